/**
 * Pre-signs KMS requests once so the load generator can replay the same bytes for a whole run.
 *
 * Signing per request would put the SDK's signer (and its cost) inside the load generator, which
 * is what limits one SDK process to ~1.4k requests/s. Keyhold accepts a signature for its 5-minute
 * skew window and does not reject replays, so a request signed just before a ~10 s run stays valid
 * throughout it; run.ts re-signs before every run.
 */
import { randomUUID } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '../src/cli/sha256.js';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** A request as the wire will carry it (autocannon adds Content-Length itself, from the body). */
export interface PresignedRequest {
  readonly method: 'POST';
  readonly path: '/';
  /** Every header that was signed or that the SDK would send, except content-length. */
  readonly headers: Record<string, string>;
  /** content-length as signed; kept apart so autocannon's own Content-Length does not duplicate it. */
  readonly contentLength: number;
  readonly body: string;
  /** When the signature was made; it is accepted until 5 minutes after this. */
  readonly signedAt: Date;
}

// The SDK's own user agent is long; a similar one keeps the request about the size a real client sends.
const USER_AGENT = `keyhold-bench/1 lang/js md/nodejs#${process.versions.node} api/kms`;

/**
 * Signs one AWS JSON 1.1 KMS call for `host` (host:port, exactly as it will be sent).
 *
 * The header set is what @aws-sdk/client-kms sends (checked against a capture): besides host,
 * content-type, x-amz-target and x-amz-date, the SDK signs content-length, x-amz-content-sha256
 * (SignatureV4's applyChecksum defaults to true), amz-sdk-invocation-id, amz-sdk-request and
 * x-amz-user-agent. Keeping them means the server parses and canonicalises what it would in
 * production, not a lighter request.
 */
export async function presign(
  host: string,
  credentials: Credentials,
  region: string,
  operation: string,
  payload: unknown,
  now = new Date(),
): Promise<PresignedRequest> {
  const body = JSON.stringify(payload);
  const signer = new SignatureV4({ service: 'kms', region, credentials, sha256: Sha256 });
  const [hostname, port] = splitHost(host);
  const signed = await signer.sign(
    {
      method: 'POST',
      protocol: 'https:',
      hostname,
      port,
      path: '/',
      query: {},
      headers: {
        host,
        'content-type': 'application/x-amz-json-1.1',
        'content-length': String(Buffer.byteLength(body)),
        'x-amz-target': `TrentService.${operation}`,
        'x-amz-user-agent': USER_AGENT,
        'user-agent': USER_AGENT,
        'amz-sdk-invocation-id': randomUUID(),
        'amz-sdk-request': 'attempt=1; max=1',
      },
      body,
    },
    { signingDate: now },
  );
  const headers: Record<string, string> = {};
  let contentLength = -1;
  for (const [name, value] of Object.entries(signed.headers as Record<string, string>)) {
    if (name.toLowerCase() === 'content-length') contentLength = Number(value);
    else headers[name] = value;
  }
  return { method: 'POST', path: '/', headers, contentLength, body, signedAt: now };
}

function splitHost(host: string): [string, number | undefined] {
  const i = host.lastIndexOf(':');
  if (i < 0 || host.endsWith(']')) return [host, undefined];
  return [host.slice(0, i), Number(host.slice(i + 1))];
}
