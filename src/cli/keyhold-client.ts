import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { randomUUID } from 'node:crypto';
import { keepAliveAgent, kmsClient, requireCjs, type ClientSettings } from './client.js';
import { Sha256 } from './sha256.js';

const { SignatureV4 } = requireCjs('@smithy/signature-v4') as typeof import('@smithy/signature-v4');

/** Keyhold's own operations (beyond AWS KMS) travel as AWS JSON 1.1 under this X-Amz-Target prefix. */
export const KEYHOLD_TARGET_PREFIX = 'KeyholdService.';

/** An error answer from the server, named by its `__type` like the AWS SDK names its exceptions. */
export class KeyholdServiceError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = type;
  }
}

/**
 * Calls one of Keyhold's own operations, signed with SigV4 (service `kms`) exactly as the AWS SDK
 * signs a KMS call, with the credentials the SDK's default chain finds. The AWS SDK cannot call
 * operations its model does not have, so this small client does, for the `keyhold` commands.
 */
export async function callKeyhold<O = Record<string, unknown>>(settings: ClientSettings, operation: string, input: unknown): Promise<O> {
  let credentials = settings.credentials;
  if (!credentials) {
    // The SDK's default chain (shared config files, ...), through a client of its own: destroyed here.
    const kms = kmsClient(settings, { privateAgent: true });
    credentials = await kms.config.credentials();
    kms.destroy();
  }
  const url = new URL(settings.endpoint);
  const body = JSON.stringify(input ?? {});
  const signer = new SignatureV4({ service: 'kms', region: settings.region, credentials, sha256: Sha256 });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: url.pathname || '/',
    query: {},
    headers: {
      host: url.host,
      'content-type': 'application/x-amz-json-1.1',
      'content-length': String(Buffer.byteLength(body)),
      'x-amz-target': KEYHOLD_TARGET_PREFIX + operation,
      'amz-sdk-invocation-id': randomUUID(),
    },
    body,
  });
  const send = url.protocol === 'http:' ? httpRequest : httpsRequest;
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = send(
      { host: url.hostname, port: url.port || undefined, method: 'POST', path: url.pathname || '/', headers: signed.headers, ...(url.protocol === 'http:' ? {} : { agent: keepAliveAgent(settings) }) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
  let json: Record<string, unknown>;
  try {
    json = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    throw new KeyholdServiceError('InvalidResponse', `the server answered HTTP ${status} with a body that is not JSON`, status);
  }
  if (status !== 200) {
    const type = String(json.__type ?? `HTTP${status}`).split('#').pop()!;
    throw new KeyholdServiceError(type, String(json.message ?? json.Message ?? ''), status);
  }
  return json as O;
}
