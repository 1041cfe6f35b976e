import type { RefusedCredentialDetail, Services } from '../operations/index.js';
import { verifySigV4, type SignedRequest } from './sigv4.js';

/** Authentication errors that a revoked, deactivated or ended credential produces. */
const REFUSED_TYPES = new Set(['UnrecognizedClientException', 'ExpiredTokenException']);

/**
 * After authentication refused a request: if the access key is one we know that no longer works
 * (deactivated key, offboarded or deleted user, ended or expired session), says whose it is, why,
 * and whether the request was signed with its real secret (old credentials in someone's hands,
 * rather than a guessed or leaked key id). The answer goes only into the audit event, for the
 * alert detectors; the caller's error stays what it was.
 */
export async function describeRefusedCredential(
  svc: Services, req: SignedRequest, services: readonly string[], errorType: string,
): Promise<RefusedCredentialDetail | undefined> {
  if (!REFUSED_TYPES.has(errorType)) return undefined;
  let found: Awaited<ReturnType<Services['identity']['inspectRefusedCredential']>>;
  let signatureValid = false;
  try {
    await verifySigV4(req, {
      now: new Date(), services,
      lookup: async (akid, token) => {
        found = await svc.identity.inspectRefusedCredential(akid, token);
        return found ? { secretAccessKey: found.secretAccessKey, principal: found.principal } : undefined;
      },
    });
    signatureValid = true;
  } catch {
    signatureValid = false;
  }
  if (!found) return undefined;
  const p = found.principal;
  return {
    state: found.state, principalArn: p.arn, principalType: p.type, accountId: p.accountId, signatureValid,
    ...(p.userName ? { userName: p.userName } : {}),
  };
}
