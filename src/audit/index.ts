export type { AuditEvent, AuditLog } from './event.js';
export { JsonlAuditLog, MemoryAuditLog } from './jsonl-audit-log.js';
