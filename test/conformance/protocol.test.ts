/**
 * Conformance: the transport. SigV4 failures, unknown operations, malformed bodies, size caps,
 * health, TLS and the error wire format, checked with raw HTTPS requests and the AWS SDK.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as tlsConnect } from 'node:tls';
import { startServer, newCredentials, type Credentials, type TestServer } from '../helpers/server.js';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function amzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

/** A minimal SigV4 signer for crafting requests the SDK would never send (wrong dates, tampering). */
function sign(opts: { host: string; target?: string; body: string; creds: Credentials; date?: Date; region?: string; service?: string; contentType?: string }): Record<string, string> {
  const date = amzDate(opts.date ?? new Date());
  const day = date.slice(0, 8);
  const region = opts.region ?? 'us-east-1';
  const service = opts.service ?? 'kms';
  const headers: Record<string, string> = {
    'content-type': opts.contentType ?? 'application/x-amz-json-1.1',
    host: opts.host,
    'x-amz-date': date,
  };
  if (opts.target) headers['x-amz-target'] = opts.target;
  const names = Object.keys(headers).sort();
  const canonical = ['POST', '/', '', ...names.map((n) => `${n}:${headers[n]}`), '', names.join(';'), createHash('sha256').update(opts.body).digest('hex')].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', date, scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  let k: Buffer = createHmac('sha256', 'AWS4' + opts.creds.secretAccessKey).update(day).digest();
  for (const part of [region, service, 'aws4_request']) k = createHmac('sha256', k).update(part).digest();
  const signature = createHmac('sha256', k).update(toSign).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${opts.creds.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return headers;
}

describe('transport and SigV4', () => {
  let server: TestServer;
  let ca: Buffer;
  let host: string;

  function raw(headers: Record<string, string>, body: string | Buffer, method = 'POST', path = '/'): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(server.url + path, { method, headers, ca }, (res) => {
        let data = '';
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: data }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  function errorOf(r: RawResponse): { type: string; message: string } {
    const j = JSON.parse(r.body) as { __type: string; message: string };
    assert.equal(r.headers['x-amzn-errortype'], j.__type);
    assert.equal(r.headers['content-type'], 'application/x-amz-json-1.1');
    assert.ok(r.headers['x-amzn-requestid']);
    return { type: j.__type, message: j.message };
  }

  before(async () => {
    server = await startServer();
    ca = readFileSync(server.caFile!);
    host = new URL(server.url).host;
  });
  after(async () => {
    await server.stop();
    server.cleanup();
  });

  it('GET /healthz answers 200', async () => {
    const r = await raw({}, '', 'GET', '/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(JSON.parse(r.body), { status: 'ok' });
  });

  it('a correctly signed raw request works', async () => {
    const body = JSON.stringify({ NumberOfBytes: 8 });
    const r = await raw(sign({ host, target: 'TrentService.GenerateRandom', body, creds: server.credentials }), body);
    assert.equal(r.status, 200, r.body);
    assert.equal(Buffer.from(JSON.parse(r.body).Plaintext, 'base64').length, 8);
  });

  it('missing Authorization: MissingAuthenticationTokenException', async () => {
    const body = '{}';
    const r = await raw({ 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'TrentService.ListKeys' }, body);
    assert.equal(r.status, 400);
    assert.deepEqual(errorOf(r), { type: 'MissingAuthenticationTokenException', message: 'Request is missing Authentication Token' });
  });

  it('unknown access key: UnrecognizedClientException', async () => {
    const body = '{}';
    const r = await raw(sign({ host, target: 'TrentService.ListKeys', body, creds: newCredentials() }), body);
    assert.deepEqual(errorOf(r), { type: 'UnrecognizedClientException', message: 'The security token included in the request is invalid.' });
  });

  it('wrong secret, and a body changed after signing: InvalidSignatureException', async () => {
    const body = '{}';
    const wrong = { accessKeyId: server.credentials.accessKeyId, secretAccessKey: 'not-the-secret-at-all' };
    const r1 = await raw(sign({ host, target: 'TrentService.ListKeys', body, creds: wrong }), body);
    assert.equal(errorOf(r1).type, 'InvalidSignatureException');
    assert.match(errorOf(r1).message, /^The request signature we calculated does not match the signature you provided/);
    const headers = sign({ host, target: 'TrentService.ListKeys', body, creds: server.credentials });
    const r2 = await raw(headers, '{"Limit":1}');
    assert.equal(errorOf(r2).type, 'InvalidSignatureException');
    const h3 = { ...sign({ host, target: 'TrentService.ListKeys', body, creds: server.credentials }), 'x-amz-target': 'TrentService.CreateKey' };
    assert.equal(errorOf(await raw(h3, body)).type, 'InvalidSignatureException');
  });

  it('a signature older or newer than 5 minutes is refused as AWS words it', async () => {
    const body = '{}';
    const old = await raw(sign({ host, target: 'TrentService.ListKeys', body, creds: server.credentials, date: new Date(Date.now() - 6 * 60_000) }), body);
    assert.equal(errorOf(old).type, 'InvalidSignatureException');
    assert.match(errorOf(old).message, /^Signature expired: \d{8}T\d{6}Z is now earlier than \d{8}T\d{6}Z \(\d{8}T\d{6}Z - 5 min\.\)$/);
    const future = await raw(sign({ host, target: 'TrentService.ListKeys', body, creds: server.credentials, date: new Date(Date.now() + 6 * 60_000) }), body);
    assert.equal(errorOf(future).type, 'InvalidSignatureException');
    assert.match(errorOf(future).message, /^Signature not yet current/);
  });

  it('a credential scoped to another service is refused', async () => {
    const body = '{}';
    const r = await raw(sign({ host, target: 'TrentService.ListKeys', body, creds: server.credentials, service: 's3' }), body);
    assert.equal(errorOf(r).type, 'InvalidSignatureException');
  });

  it('unknown or missing X-Amz-Target, and GET, give UnknownOperationException as JSON', async () => {
    const body = '{}';
    const r1 = await raw(sign({ host, target: 'TrentService.Foo', body, creds: server.credentials }), body);
    assert.equal(r1.status, 400);
    assert.equal(errorOf(r1).type, 'UnknownOperationException');
    const r2 = await raw(sign({ host, body, creds: server.credentials }), body);
    assert.equal(errorOf(r2).type, 'UnknownOperationException');
    const r3 = await raw(sign({ host, target: 'Other.ListKeys', body, creds: server.credentials }), body);
    assert.equal(errorOf(r3).type, 'UnknownOperationException');
    const r4 = await raw({}, '', 'GET', '/');
    assert.equal(errorOf(r4).type, 'UnknownOperationException');
    const r5 = await raw(sign({ host, target: 'TrentService.ListKeys', body, creds: server.credentials, contentType: 'text/plain' }), body);
    assert.equal(errorOf(r5).type, 'UnknownOperationException');
    const r6 = await raw(sign({ host, target: 'TrentService.constructor', body, creds: server.credentials }), body);
    assert.equal(errorOf(r6).type, 'UnknownOperationException');
  });

  it('malformed JSON and wrongly typed members give SerializationException; constraints give ValidationException', async () => {
    for (const [body, type] of [
      ['{not json', 'SerializationException'],
      ['[]', 'SerializationException'],
      ['{"Limit":"ten"}', 'SerializationException'],
      ['{"Limit":1.5}', 'SerializationException'],
      ['{"Limit":0}', 'ValidationException'],
    ] as const) {
      const r = await raw(sign({ host, target: 'TrentService.ListKeys', body, creds: server.credentials }), body);
      assert.equal(r.status, 400);
      assert.equal(errorOf(r).type, type, body);
    }
    const notBase64 = JSON.stringify({ KeyId: 'alias/x', Plaintext: 'not base64!!' });
    const r = await raw(sign({ host, target: 'TrentService.Encrypt', body: notBase64, creds: server.credentials }), notBase64);
    assert.equal(errorOf(r).type, 'SerializationException');
    const missing = JSON.stringify({ Plaintext: 'aGk=' });
    const r2 = await raw(sign({ host, target: 'TrentService.Encrypt', body: missing, creds: server.credentials }), missing);
    assert.deepEqual(errorOf(r2), { type: 'ValidationException', message: "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null" });
  });

  it('a body over the cap is refused with 413 before it is read in full', async () => {
    const body = JSON.stringify({ Description: 'x'.repeat(300 * 1024) });
    const r = await raw(sign({ host, target: 'TrentService.CreateKey', body, creds: server.credentials }), body);
    assert.equal(r.status, 413);
    assert.equal(errorOf(r).type, 'ValidationException');
  });

  it('internal errors never leak detail: the error body is only __type and message', async () => {
    const body = '{}';
    const r = await raw(sign({ host, target: 'TrentService.ListKeys', body, creds: newCredentials() }), body);
    assert.deepEqual(Object.keys(JSON.parse(r.body)).sort(), ['__type', 'message']);
  });

  it('TLS 1.2 is the minimum: a TLS 1.1 client is refused', async () => {
    const url = new URL(server.url);
    const outcome = await new Promise<string>((resolve) => {
      const s = tlsConnect({ host: url.hostname, port: Number(url.port), ca, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, () => {
        resolve(`connected with ${s.getProtocol()}`);
        s.end();
      });
      s.on('error', (e) => resolve(`refused: ${e.message}`));
    });
    assert.match(outcome, /^refused/);
    const ok = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({ host: url.hostname, port: Number(url.port), ca, servername: 'localhost' }, () => {
        resolve(s.getProtocol() ?? '');
        s.end();
      });
      s.on('error', reject);
    });
    assert.match(ok, /^TLSv1\.[23]$/);
  });

  it('the SDK parses our errors into its own exception classes', async () => {
    const kms = server.kms({ credentials: newCredentials() });
    await assert.rejects(kms.listKeys({}), (e: Error & { $fault?: string }) => {
      assert.equal(e.name, 'UnrecognizedClientException');
      assert.equal(e.$fault, 'client');
      return true;
    });
  });
});
