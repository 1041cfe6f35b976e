import * as ops from '../../operations/index.js';
import { route, type Route } from './kms-routes.js';
import { bool, int, list, str, struct, timestamp } from './schema.js';

/**
 * Keyhold's own operations, beyond the AWS KMS model (version retirement, audit, backups registry,
 * offboarding, ...). They use the same transport as KMS: AWS JSON 1.1, SigV4 with service `kms`,
 * X-Amz-Target `KeyholdService.<Operation>`; `keyhold` client commands call them through
 * src/cli/keyhold-client.ts. Each entry is typed like KMS_ROUTES (use `route` from kms-routes.ts).
 */
export const KEYHOLD_ROUTES = {
  VerifyAuditLog: route(
    struct({}),
    struct({
      Valid: bool(), EventsChecked: int(), DigestsChecked: int(), FirstSeq: int(), LastSeq: int(), SignedThroughSeq: int(),
      RetainedThroughSeq: int(), PublicKeyFingerprint: str(),
      Problem: struct({ Kind: str({ enum: ['altered', 'removed', 'reordered', 'digest'] }), Seq: int(), EventId: str(), Message: str() }, ['Kind', 'Message']),
    }, ['Valid', 'EventsChecked', 'DigestsChecked', 'FirstSeq', 'LastSeq', 'SignedThroughSeq', 'RetainedThroughSeq', 'PublicKeyFingerprint']),
    ops.verifyAuditLog,
  ),
  GetLastUsage: route(
    struct({ PrincipalArn: str({ min: 1, max: 2048 }), KeyId: str({ min: 1, max: 2048 }), Limit: int({ min: 1, max: 1000 }) }),
    struct({
      Usage: list(struct({
        PrincipalArn: str(), KeyArn: str(), Operation: str(), Timestamp: timestamp(), CloudTrailEventId: str(), Count: int(),
      }, ['PrincipalArn', 'KeyArn', 'Operation', 'Timestamp', 'CloudTrailEventId', 'Count'])),
    }, ['Usage']),
    ops.getLastUsage,
  ),
} satisfies Record<string, Route>;

export const KEYHOLD_TARGET_PREFIX = 'KeyholdService.';
