import type { Route } from './kms-routes.js';

/**
 * Keyhold's own operations, beyond the AWS KMS model (version retirement, audit, backups registry,
 * offboarding, ...). They use the same transport as KMS: AWS JSON 1.1, SigV4 with service `kms`,
 * X-Amz-Target `KeyholdService.<Operation>`; `keyhold` client commands call them through
 * src/cli/keyhold-client.ts. Each entry is typed like KMS_ROUTES (use `route` from kms-routes.ts).
 */
export const KEYHOLD_ROUTES = {} satisfies Record<string, Route>;

export const KEYHOLD_TARGET_PREFIX = 'KeyholdService.';
