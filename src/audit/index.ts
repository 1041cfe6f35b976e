export type { AuditEvent, AuditHealth, AuditLog } from './event.js';
export { MemoryAuditLog } from './memory-audit-log.js';
export { SqliteAuditLog, AuditWriteError } from './sqlite-audit-log.js';
export { AuditDb } from './audit-db.js';
