export type { KeyStore, MaterialRef } from './keystore.js';
export { SoftwareKeyStore } from './software-keystore.js';
export { GuardedKeyStore } from './guarded-keystore.js';
export { AuditSigningKey } from './audit-signing-key.js';
