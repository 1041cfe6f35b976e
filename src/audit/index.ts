export type { AuditEvent, AuditHealth, AuditLog, AuditSigner, StoredAlert } from './event.js';
export { AlertEngine, type Alert } from './alerts.js';
export type { AuditVerification } from './verify.js';
export { verifyAuditDb, publicKeyFingerprint } from './verify.js';
export { MemoryAuditLog } from './memory-audit-log.js';
export { SqliteAuditLog, AuditWriteError } from './sqlite-audit-log.js';
export { AuditDb } from './audit-db.js';
export type { LastUseQuery, LastUseRow, LookupQuery } from './audit-db.js';
export { toCloudTrailRecord, toLookupEvent } from './cloudtrail.js';
