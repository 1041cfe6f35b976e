import { parseArgs } from 'node:util';
import { clientSettings, UsageError } from './client.js';
import { callKeyhold } from './keyhold-client.js';

type Out = (line: string) => void;

/** A verification result as both paths give it (API answer or offline check), in camelCase. */
export interface VerificationReport {
  valid: boolean;
  eventsChecked: number;
  digestsChecked: number;
  firstSeq: number;
  lastSeq: number;
  signedThroughSeq: number;
  retainedThroughSeq: number;
  publicKeyFingerprint: string;
  problem?: { kind: string; seq?: number; eventId?: string; message: string };
}

/** Exit status of `keyhold audit verify` when the log fails verification (1 is an API error, 2 usage). */
export const VERIFY_FAILED_EXIT = 3;

export function printVerification(r: VerificationReport, json: boolean, out: Out): number {
  if (json) {
    out(JSON.stringify(r, null, 2));
  } else if (r.valid) {
    out(`audit log OK: ${r.eventsChecked} events (${r.firstSeq}..${r.lastSeq}), ${r.digestsChecked} signed digests; signed through event ${r.signedThroughSeq}` +
      (r.lastSeq > r.signedThroughSeq ? ` (events ${r.signedThroughSeq + 1}..${r.lastSeq} chained, not yet signed)` : '') +
      (r.retainedThroughSeq > 0 ? `; events 1..${r.retainedThroughSeq} removed by retention under a signed digest` : '') +
      `; signing key sha256:${r.publicKeyFingerprint}`);
  } else {
    out(`audit log FAILED verification: ${r.problem!.kind}${r.problem!.seq !== undefined ? ` at event ${r.problem!.seq}` : ''}` +
      `${r.problem!.eventId ? ` (eventId ${r.problem!.eventId})` : ''}: ${r.problem!.message}`);
  }
  return r.valid ? 0 : VERIFY_FAILED_EXIT;
}

function fromWire(w: Record<string, unknown>): VerificationReport {
  const p = w.Problem as Record<string, unknown> | undefined;
  return {
    valid: w.Valid === true,
    eventsChecked: Number(w.EventsChecked),
    digestsChecked: Number(w.DigestsChecked),
    firstSeq: Number(w.FirstSeq),
    lastSeq: Number(w.LastSeq),
    signedThroughSeq: Number(w.SignedThroughSeq),
    retainedThroughSeq: Number(w.RetainedThroughSeq),
    publicKeyFingerprint: String(w.PublicKeyFingerprint),
    ...(p ? { problem: { kind: String(p.Kind), seq: p.Seq as number | undefined, eventId: p.EventId as string | undefined, message: String(p.Message) } } : {}),
  };
}

/** `keyhold audit verify` through the API (offline with --data-dir is run by the server side: see bin/keyhold.js). */
async function verify(argv: string[], out: Out): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean' }, 'endpoint-url': { type: 'string' }, region: { type: 'string' } } });
  const r = await callKeyhold(clientSettings(values), 'VerifyAuditLog', {});
  return printVerification(fromWire(r), values.json === true, out);
}

export async function auditCommand(argv: string[], out: Out): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'verify') return verify(rest, out);
  throw new UsageError(`unknown command: audit ${sub ?? ''}`);
}
