export type { KeyStore, MaterialRef, HsmDirectory, HsmConnectionError } from './keystore.js';
export { NO_HSMS } from './keystore.js';
export { SoftwareKeyStore } from './software-keystore.js';
export { GuardedKeyStore } from './guarded-keystore.js';
export { AuditSigningKey } from './audit-signing-key.js';
export { RoutingKeyStore } from './routing-keystore.js';
export { ImportParameterStore, IMPORT_PARAMETERS_VALID_MS, UNWRAP_FAILED_MESSAGE, type ConsumedImportToken, type IssuedImportParameters } from './import-parameters.js';
export { AuditContextKey, CONTEXT_HMAC_PREFIX } from './audit-context-key.js';
