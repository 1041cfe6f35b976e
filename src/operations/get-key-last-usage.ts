import { authorizeAccount, authorizeKey } from './common.js';
import type { Operation } from './context.js';

/** The operations GetKeyLastUsage tracks (botocore KeyLastUsageTrackingOperation). */
export const TRACKED_CRYPTO_OPERATIONS = [
  'Decrypt', 'DeriveSharedSecret', 'Encrypt', 'GenerateDataKey', 'GenerateDataKeyPair', 'GenerateDataKeyPairWithoutPlaintext',
  'GenerateDataKeyWithoutPlaintext', 'GenerateMac', 'ReEncrypt', 'Sign', 'Verify', 'VerifyMac',
] as const;

/**
 * GetKeyLastUsage (AWS): the last successful cryptographic operation with the key, read from the
 * audit log. Tracking starts when the key was created (every call has been audited since).
 */
export const getKeyLastUsage: Operation<
  { keyId: string },
  { keyId: string; keyLastUsage?: { operation: string; timestamp: Date; cloudTrailEventId: string; kmsRequestId: string }; trackingStartDate: Date; keyCreationDate: Date }
> = {
  name: 'GetKeyLastUsage',
  eventSource: 'kms.amazonaws.com',
  readOnly: true,
  async run(svc, call, input, audit) {
    const key = await svc.keys.resolve(input.keyId, call, { allowAlias: false });
    audit.key(key.arn);
    await authorizeKey(svc, call, key, 'GetKeyLastUsage', audit);
    const [last] = await svc.audit.lookup({
      accountId: call.accountId, region: call.region, attribute: { key: 'ResourceName', value: key.arn },
      eventNames: TRACKED_CRYPTO_OPERATIONS, succeededOnly: true, limit: 1,
    });
    const created = new Date(key.createdAt);
    return {
      keyId: key.keyId,
      ...(last ? {
        keyLastUsage: {
          operation: last.event.eventName, timestamp: new Date(last.event.eventTime), cloudTrailEventId: last.event.eventId!, kmsRequestId: last.event.requestId,
        },
      } : {}),
      trackingStartDate: created,
      keyCreationDate: created,
    };
  },
};

/**
 * GetLastUsage (Keyhold's own): per principal and key, the last successful cryptographic use and
 * how many there were, newest first; filter by principal ARN and/or key. For access reviews and
 * offboarding ("what did they decrypt, and when last").
 */
export const getLastUsage: Operation<
  { principalArn?: string; keyId?: string; limit?: number },
  { usage: { principalArn: string; keyArn: string; operation: string; timestamp: Date; cloudTrailEventId: string; count: number }[] }
> = {
  name: 'GetLastUsage',
  eventSource: 'keyhold',
  readOnly: true,
  async run(svc, call, input, audit) {
    await authorizeAccount(svc, call, 'GetLastUsage', audit);
    let keyArn: string | undefined;
    if (input.keyId !== undefined) {
      const key = await svc.keys.resolve(input.keyId, call, { allowAlias: true });
      audit.key(key.arn);
      keyArn = key.arn;
    }
    const rows = await svc.audit.lastUse({
      accountId: call.accountId, region: call.region, principalArn: input.principalArn, keyArn,
      eventNames: TRACKED_CRYPTO_OPERATIONS, limit: input.limit ?? 1000,
    });
    return {
      usage: rows.map((r) => ({
        principalArn: r.principalArn, keyArn: r.keyArn, operation: r.eventName, timestamp: new Date(r.eventTime), cloudTrailEventId: r.eventId, count: r.count,
      })),
    };
  },
};
