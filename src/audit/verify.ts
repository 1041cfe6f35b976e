import { createHash, createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { eventHash, GENESIS_HASH, type AuditDb, type DigestBody, type DigestRow, type StoredEvent } from './audit-db.js';

/** What `keyhold audit verify` and VerifyAuditLog report. */
export interface AuditVerification {
  valid: boolean;
  eventsChecked: number;
  digestsChecked: number;
  /** First and last sequence number present (0 when the log is empty). */
  firstSeq: number;
  lastSeq: number;
  /** Events up to here are covered by a signed digest; later ones by the chain only. */
  signedThroughSeq: number;
  /** Events removed on purpose by retention (a signed retention digest says so). */
  retainedThroughSeq: number;
  /** SHA-256 fingerprint (hex) of the public key the digests were checked with. */
  publicKeyFingerprint: string;
  problem?: {
    kind: 'altered' | 'removed' | 'reordered' | 'digest';
    /** The first event in trouble (for `removed`, the position that is missing). */
    seq?: number;
    eventId?: string;
    message: string;
  };
}

/** How far around a broken position to look for the event that belongs there (reordering). */
const REORDER_WINDOW = 64;

export function publicKeyFingerprint(pem: string): string {
  return createHash('sha256').update(createPublicKey(pem).export({ type: 'spki', format: 'der' })).digest('hex');
}

export function digestSignedBody(body: DigestBody): string {
  return JSON.stringify(body);
}

function sha256Hex(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function eventIdOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { eventId?: string }).eventId;
  } catch {
    return undefined;
  }
}

/**
 * Checks the digests (signatures, continuity) and then the chain: every event's hash recomputed
 * from its stored JSON and the recomputed hash of the event before it, never trusting the stored
 * hash columns alone; at each digest's end the recomputed hash must equal the signed one. Stops at
 * the first problem and names it. Runs in one read transaction (a consistent snapshot).
 */
export function verifyAuditDb(adb: AuditDb, publicKeyPem: string): AuditVerification {
  const key: KeyObject = createPublicKey(publicKeyPem);
  const run = adb.db.transaction(() => verifyInSnapshot(adb, key, publicKeyFingerprint(publicKeyPem)));
  return run.deferred();
}

function verifyInSnapshot(adb: AuditDb, key: KeyObject, fingerprint: string): AuditVerification {
  const result: AuditVerification = {
    valid: true, eventsChecked: 0, digestsChecked: 0, firstSeq: 0, lastSeq: 0, signedThroughSeq: 0, retainedThroughSeq: 0,
    publicKeyFingerprint: fingerprint,
  };
  const fail = (problem: NonNullable<AuditVerification['problem']>): AuditVerification => ({ ...result, valid: false, problem });

  // 1. Digests: each signed, each continuing the one before.
  const digests: { row: DigestRow; body: DigestBody }[] = [];
  let prev: { row: DigestRow; body: DigestBody } | undefined;
  for (const row of adb.digests()) {
    let body: DigestBody;
    try {
      body = JSON.parse(row.body) as DigestBody;
    } catch {
      return fail({ kind: 'digest', message: `digest ${row.digestSeq} is not valid JSON` });
    }
    if (!verifySignature(null, Buffer.from(row.body), key, Buffer.from(row.signature, 'base64'))) {
      return fail({ kind: 'digest', message: `digest ${row.digestSeq} (events ${row.fromSeq}..${row.toSeq}) has an invalid signature` });
    }
    const expectFrom = prev ? prev.body.toSeq + 1 : 1;
    if (body.digestSeq !== row.digestSeq || body.fromSeq !== row.fromSeq || body.toSeq !== row.toSeq || body.fromSeq !== expectFrom
      || body.prevHash !== (prev ? prev.body.headHash : GENESIS_HASH) || body.prevDigest !== (prev ? sha256Hex(prev.row.body) : '')
      || body.toSeq < body.fromSeq - (body.retention ? 1 : 0)) {
      return fail({ kind: 'digest', message: `digest ${row.digestSeq} does not continue digest ${prev?.row.digestSeq ?? '(none)'}: a digest was removed, reordered or replaced` });
    }
    digests.push({ row, body });
    prev = { row, body };
    result.digestsChecked++;
  }
  const lastSigned = digests.length > 0 ? digests[digests.length - 1]!.body.toSeq : 0;
  const headHashAt = new Map(digests.map((d) => [d.body.toSeq, d.body.headHash]));
  // Retention: the furthest removal any signed retention digest states; it must end where a
  // signed digest ends (so the kept chain starts from a signed hash) and before its own range.
  let retainedThrough = 0;
  for (const d of digests) {
    const r = d.body.retention;
    if (!r) continue;
    if (!Number.isInteger(r.removedThroughSeq) || r.removedThroughSeq >= d.body.fromSeq || !headHashAt.has(r.removedThroughSeq)) {
      return fail({ kind: 'digest', message: `digest ${d.row.digestSeq} states a removal through event ${r.removedThroughSeq} that no signed digest ends at` });
    }
    retainedThrough = Math.max(retainedThrough, r.removedThroughSeq);
  }
  result.retainedThroughSeq = retainedThrough;

  // 2. The chain, from the first event retention kept.
  let expected = retainedThrough + 1;
  let prevHash = retainedThrough === 0 ? GENESIS_HASH : headHashAt.get(retainedThrough)!;
  const window: StoredEvent[] = [];
  let first = true;
  // Pages rather than one open iterator: classify() reads too, and a connection runs one statement at a time.
  for (let page = adb.eventsAfter(retainedThrough, 1000); page.length > 0; page = adb.eventsAfter(page[page.length - 1]!.seq, 1000)) for (const row of page) {
    if (first) {
      result.firstSeq = row.seq;
      first = false;
    }
    if (row.seq !== expected) {
      return fail({
        kind: 'removed', seq: expected,
        message: `event ${expected}${row.seq > expected + 1 ? `..${row.seq - 1}` : ''} was removed (the log goes from ${expected - 1} to ${row.seq})`,
      });
    }
    const computed = eventHash(row.seq, prevHash, row.body);
    if (computed !== row.hash || row.prevHash !== prevHash) {
      return fail(classify(adb, row, prevHash, window));
    }
    const signed = headHashAt.get(row.seq);
    if (signed !== undefined && signed !== computed) {
      const d = digests.find((x) => x.body.toSeq === row.seq)!;
      return fail({
        kind: 'altered', seq: d.body.fromSeq,
        message: `events ${d.body.fromSeq}..${d.body.toSeq} do not match signed digest ${d.row.digestSeq}: they were altered and the chain rewritten`,
      });
    }
    window.push(row);
    if (window.length > REORDER_WINDOW) window.shift();
    prevHash = computed;
    expected = row.seq + 1;
    result.eventsChecked++;
    result.lastSeq = row.seq;
  }
  if (lastSigned > result.lastSeq && lastSigned > retainedThrough) {
    return fail({
      kind: 'removed', seq: Math.max(result.lastSeq, retainedThrough) + 1,
      message: `events ${Math.max(result.lastSeq, retainedThrough) + 1}..${lastSigned} were removed (a signed digest covers them)`,
    });
  }
  result.signedThroughSeq = Math.min(lastSigned, result.lastSeq || lastSigned);
  return result;
}

/** Why `row` does not fit the chain at its position: removed before it, moved here, or altered. */
function classify(adb: AuditDb, row: StoredEvent, prevHash: string, before: StoredEvent[]): NonNullable<AuditVerification['problem']> {
  const eventId = eventIdOf(row.body);
  // Self-consistent but not linked to its predecessor: events were taken out and the rest renumbered.
  if (eventHash(row.seq, row.prevHash, row.body) === row.hash && row.prevHash !== prevHash) {
    return { kind: 'removed', seq: row.seq, eventId, message: `an event before event ${row.seq} (${eventId}) was removed: it does not follow event ${row.seq - 1}` };
  }
  // A whole row (with its hash columns) moved here from another position?
  for (let d = -REORDER_WINDOW; d <= REORDER_WINDOW; d++) {
    if (d !== 0 && row.seq + d > 0 && eventHash(row.seq + d, row.prevHash, row.body) === row.hash) {
      // Every later row shifted down by the same d: d events were taken out here and the rest renumbered.
      const next = adb.eventsAfter(row.seq, 1)[0];
      if (d > 0 && (next === undefined || eventHash(next.seq + d, next.prevHash, next.body) === next.hash)) {
        return {
          kind: 'removed', seq: row.seq, eventId,
          message: `event${d > 1 ? 's' : ''} ${row.seq}${d > 1 ? `..${row.seq + d - 1}` : ''} removed and the later events renumbered (event ${row.seq} now holds the one recorded at ${row.seq + d})`,
        };
      }
      return { kind: 'reordered', seq: row.seq, eventId, message: `event ${row.seq} (${eventId}) was recorded at position ${row.seq + d}: events were reordered` };
    }
  }
  // Does this event's JSON belong at another position nearby?
  const after = adb.db
    .prepare('SELECT seq, body, prev_hash AS prevHash, hash FROM events WHERE seq > ? ORDER BY seq LIMIT ?')
    .all(row.seq, REORDER_WINDOW) as StoredEvent[];
  for (const other of [...before, ...after]) {
    if (eventHash(other.seq, other.prevHash, row.body) === other.hash) {
      return {
        kind: 'reordered', seq: row.seq, eventId,
        message: `event ${row.seq} holds the event recorded at position ${other.seq} (${eventId}): events were reordered`,
      };
    }
  }
  return { kind: 'altered', seq: row.seq, eventId, message: `event ${row.seq}${eventId ? ` (${eventId})` : ''} was altered: its content does not match its hash` };
}
