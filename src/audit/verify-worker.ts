/** One verification of the audit log on its own thread and connection (read-only), so writers never wait for it. */
import { parentPort, workerData } from 'node:worker_threads';
import { AuditDb } from './audit-db.js';
import { verifyAuditDb } from './verify.js';

const { file, publicKeyPem } = workerData as { file: string; publicKeyPem: string };
try {
  const db = AuditDb.open(file, { readonly: true });
  try {
    parentPort!.postMessage({ ok: true, result: verifyAuditDb(db, publicKeyPem) });
  } finally {
    db.close();
  }
} catch (e) {
  parentPort!.postMessage({ ok: false, error: (e as Error).message });
}
