import { InvalidGrantTokenException, isKmsError, KMSInternalException } from '../errors/index.js';
import { AuditDraft, type AuditEvent, type CallContext, type Operation, type Services } from './context.js';
import type { AuditContextKey } from '../keystore/index.js';
import { isoTime } from './common.js';

/**
 * The operations whose GrantTokens may be rejected with InvalidGrantTokenException (botocore's KMS
 * model lists that error for each; DescribeKey takes GrantTokens but does not list it).
 */
const GRANT_TOKEN_OPERATIONS = new Set([
  'CreateGrant', 'Decrypt', 'DeriveSharedSecret', 'Encrypt', 'GenerateDataKey', 'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext',
  'GenerateDataKeyWithoutPlaintext', 'GenerateMac', 'GetPublicKey', 'ReEncrypt', 'Sign', 'Verify', 'VerifyMac',
]);

/** A grant token as CreateGrant issues it (operations/grants.ts): 48 random bytes, base64url. */
export const GRANT_TOKEN_PATTERN = /^[A-Za-z0-9_-]{64}$/;

/**
 * Every grant token is checked for form (the transport calls this on the decoded input, inside
 * invoke, so the refusal is audited): a malformed one is InvalidGrantTokenException. A well-formed
 * token needs no lookup: grants take effect at once here (no eventual consistency to bridge), so the
 * token of a new grant works, and that of an unknown, retired or revoked grant gives no access by
 * itself (the request is decided by policies and live grants) and is not an error, as in AWS.
 */
export function checkGrantTokens(op: string, input: unknown): void {
  if (!GRANT_TOKEN_OPERATIONS.has(op) || !input || typeof input !== 'object') return;
  const tokens = (input as { grantTokens?: unknown }).grantTokens;
  if (!Array.isArray(tokens)) return;
  tokens.forEach((t, i) => {
    if (typeof t !== 'string' || !GRANT_TOKEN_PATTERN.test(t)) throw new InvalidGrantTokenException(`The grant token at position ${i + 1} of GrantTokens is not valid.`);
  });
}

/**
 * Runs one operation and records its audit event before the answer leaves: allowed, denied or
 * failed. If the event cannot be recorded, the caller gets KMSInternalException and no result.
 */
export async function invoke<I, O>(svc: Services, call: CallContext, op: Operation<I, O>, input: I): Promise<O> {
  const draft = new AuditDraft();
  let result: O | undefined;
  let failure: unknown;
  try {
    result = await op.run(svc, call, input, draft);
  } catch (e) {
    failure = e;
  }
  const event: AuditEvent = {
    eventTime: isoTime(svc.clock.now()),
    eventName: op.name,
    eventSource: op.eventSource,
    awsRegion: call.region,
    requestId: call.requestId,
    sourceIPAddress: call.sourceIp,
    userAgent: call.userAgent,
    tlsVersion: call.tlsVersion,
    readOnly: op.readOnly,
    principal: {
      type: call.principal.type,
      arn: call.principal.arn,
      accountId: call.principal.accountId,
      accessKeyId: call.principal.accessKeyId,
      userName: call.principal.userName,
      isRoot: call.principal.type === 'Root',
    },
    accessKeyId: call.principal.accessKeyId,
    resources: draft.resources,
    encryptionContext: draft.encryptionContext,
    decision: draft.decision,
    details: draft.details,
  };
  if (failure !== undefined) {
    event.errorCode = isKmsError(failure) ? failure.type : 'KMSInternalException';
    if (isKmsError(failure) && failure.fault === 'client') event.errorMessage = failure.message;
  }
  try {
    if (svc.auditContextKey && (event.encryptionContext || event.details?.destinationEncryptionContext)) await hmacContextValues(svc, svc.auditContextKey, event);
    await svc.audit.record(event);
  } catch (e) {
    svc.log('error', 'audit event could not be recorded; failing the request', { requestId: call.requestId, error: String(e) });
    throw new KMSInternalException('The request could not be recorded in the audit log.');
  }
  if (failure !== undefined) throw failure;
  return result as O;
}

/** Whose a refused credential is and why it no longer works (an audit detail the alert detectors read). */
export interface RefusedCredentialDetail {
  state: 'access-key-inactive' | 'user-offboarded' | 'user-deleted' | 'session-ended' | 'session-expired';
  principalArn: string;
  principalType: string;
  accountId: string;
  userName?: string;
  /** Whether the request was signed with the credential's real secret. */
  signatureValid: boolean;
}

/**
 * The account setting AuditEncryptionContextHmac: the event carries `hmac-sha256:<hex>` of each
 * encryption-context value (keys as given), so equal values still match and the values are not
 * stored. Runs only for events with a context; the settings read is cached (KeyRepository).
 */
async function hmacContextValues(svc: Services, key: AuditContextKey, event: AuditEvent): Promise<void> {
  const accountId = event.principal!.accountId;
  if ((await svc.keys.getAccountSettings(accountId)).auditEncryptionContextHmac !== true) return;
  if (event.encryptionContext) event.encryptionContext = key.hmacContext(accountId, event.encryptionContext);
  const dest = event.details?.destinationEncryptionContext as Record<string, string> | undefined;
  if (dest) event.details!.destinationEncryptionContext = key.hmacContext(accountId, dest);
}

/** Records an authentication failure (no principal is authenticated; a refused known credential is named in details). */
export async function recordAuthFailure(
  svc: Services,
  info: {
    requestId: string; eventName: string; eventSource: string; region: string; sourceIp: string; userAgent: string; accessKeyId?: string; errorCode: string;
    refusedCredential?: RefusedCredentialDetail;
  },
): Promise<void> {
  await svc.audit.record({
    eventTime: new Date(svc.clock.now()).toISOString(),
    eventName: info.eventName,
    eventSource: info.eventSource,
    awsRegion: info.region,
    requestId: info.requestId,
    sourceIPAddress: info.sourceIp,
    userAgent: info.userAgent,
    readOnly: false,
    accessKeyId: info.accessKeyId,
    resources: [],
    ...(info.refusedCredential ? { details: { refusedCredential: info.refusedCredential } } : {}),
    errorCode: info.errorCode,
  });
}
