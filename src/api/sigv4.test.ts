import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  IncompleteSignatureException,
  InvalidSignatureException,
  MissingAuthenticationTokenException,
  UnrecognizedClientException,
  type KmsError,
} from '../errors/index.js';
import {
  clearSigV4KeyCache,
  sigV4KeyCacheStats,
  verifySigV4,
  type SignedRequest,
  type VerifyOptions,
} from './sigv4.js';

// Types of the SDK signer, taken from its own signatures (no direct dependency on @smithy/types).
type HttpRequest = Parameters<SignatureV4['presign']>[0];
type Sha256Ctor = NonNullable<ConstructorParameters<typeof SignatureV4>[0]['sha256']>;
type SourceData = NonNullable<ConstructorParameters<Sha256Ctor>[0]>;

// ---------------------------------------------------------------------------------------------
// Fixtures

/** The fixed server clock: 2024-08-20 23:08:02 UTC. */
const NOW = new Date(Date.UTC(2024, 7, 20, 23, 8, 2));
const MIN = 60_000;

interface Principal {
  accountId: string;
  arn: string;
}
const ALICE: Principal = { accountId: '111122223333', arn: 'arn:aws:iam::111122223333:user/alice' };
const BOB: Principal = { accountId: '444455556666', arn: 'arn:aws:sts::444455556666:assumed-role/ops/bob' };

interface Creds {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}
const ALICE_CREDS: Creds = { accessKeyId: 'AKIDKEYHOLDTEST01', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const BOB_CREDS: Creds = {
  accessKeyId: 'ASIAKEYHOLDTEMP01',
  secretAccessKey: 'tMpS3cr3t/with+odd=chars',
  sessionToken: 'FwoGZXIvYXdzEJr//////////wEaDNsessiontoken+/=',
};

const users = new Map<string, { secret: string; token?: string; principal: Principal }>([
  [ALICE_CREDS.accessKeyId, { secret: ALICE_CREDS.secretAccessKey, principal: ALICE }],
  [BOB_CREDS.accessKeyId, { secret: BOB_CREDS.secretAccessKey, token: BOB_CREDS.sessionToken!, principal: BOB }],
]);

function options(overrides: Partial<VerifyOptions<Principal>> = {}): VerifyOptions<Principal> & { calls: Array<[string, string | undefined]> } {
  const calls: Array<[string, string | undefined]> = [];
  return {
    now: NOW,
    services: ['kms'],
    lookup: async (akid, token) => {
      calls.push([akid, token]);
      const u = users.get(akid);
      if (u === undefined || u.token !== token) return undefined;
      return { secretAccessKey: u.secret, principal: u.principal };
    },
    ...overrides,
    calls,
  };
}

const MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

const ENCRYPT_BODY = '{"KeyId":"fccc2db0-cbed-4eaa-9691-3b4cfb04f6b3","Plaintext":"aGVsbG8gc2Rr","EncryptionContext":{"purpose":"test"}}';

/** A sha256 constructor for @smithy/signature-v4 (its Checksum interface), built on node:crypto. */
class NodeSha256 {
  private readonly secret: Buffer | undefined;
  private h: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.secret = secret === undefined ? undefined : toBuffer(secret);
    this.h = this.fresh();
  }
  private fresh(): Hash | Hmac {
    return this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }
  update(data: Uint8Array | string): void {
    this.h.update(data);
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.h.digest()));
  }
  reset(): void {
    this.h = this.fresh();
  }
}
function toBuffer(d: SourceData): Buffer {
  if (typeof d === 'string') return Buffer.from(d, 'utf8');
  if (ArrayBuffer.isView(d)) return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  return Buffer.from(new Uint8Array(d));
}

/** Query encoding as the SDK's query builder does it (RFC 3986 unreserved left alone). */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

function wireQuery(query: Record<string, string | string[] | null>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === null) continue;
    for (const one of Array.isArray(v) ? v : [v]) parts.push(`${escapeUri(k)}=${escapeUri(one)}`);
  }
  return parts.join('&');
}

/** What Node would hand us for a header list: lower-case object (duplicates joined by ', ') plus rawHeaders. */
function fromHeaderList(list: ReadonlyArray<readonly [string, string]>): Pick<SignedRequest, 'headers' | 'rawHeaders'> {
  const headers: Record<string, string> = {};
  const rawHeaders: string[] = [];
  for (const [k, v] of list) {
    const lk = k.toLowerCase();
    headers[lk] = headers[lk] === undefined ? v : `${headers[lk]}, ${v}`;
    rawHeaders.push(k, v);
  }
  return { headers, rawHeaders };
}

interface SmithySpec {
  method?: string;
  path?: string;
  query?: Record<string, string | string[]>;
  headers?: Record<string, string>;
  body?: string;
  region?: string;
  service?: string;
  creds?: Creds;
  at?: Date;
  unsignable?: string[];
}

function smithyRequest(spec: SmithySpec): HttpRequest {
  return {
    method: spec.method ?? 'POST',
    protocol: 'https:',
    hostname: 'kms.local',
    port: 4566,
    path: spec.path ?? '/',
    query: spec.query ?? {},
    headers: spec.headers ?? {
      'content-type': 'application/x-amz-json-1.1',
      'x-amz-target': 'TrentService.Encrypt',
      host: 'kms.local:4566',
      'content-length': String(Buffer.byteLength(spec.body ?? ENCRYPT_BODY)),
      'user-agent': 'aws-sdk-js/3.1161.0 ua/2.1 os/linux lang/js md/nodejs#20',
      'x-amz-user-agent': 'aws-sdk-js/3.1161.0',
      'amz-sdk-invocation-id': '910edbe9-693e-412b-9f45-9a83dd409da2',
      'amz-sdk-request': 'attempt=1; max=3',
    },
    body: Buffer.from(spec.body ?? ENCRYPT_BODY, 'utf8'),
  };
}

function signer(spec: SmithySpec): SignatureV4 {
  return new SignatureV4({
    credentials: spec.creds ?? ALICE_CREDS,
    region: spec.region ?? 'eu-west-1',
    service: spec.service ?? 'kms',
    sha256: NodeSha256,
  });
}

function toSigned(r: HttpRequest): SignedRequest {
  const list: Array<[string, string]> = Object.entries(r.headers).map(([k, v]) => [k, v]);
  return {
    method: r.method,
    rawPath: r.path,
    rawQuery: wireQuery(r.query ?? {}),
    ...fromHeaderList(list),
    body: Buffer.from(r.body as Buffer),
  };
}

/** A request signed by @smithy/signature-v4 (the JS SDK v3 signer). */
async function smithySign(spec: SmithySpec = {}): Promise<SignedRequest> {
  const signed = await signer(spec).sign(smithyRequest(spec), {
    signingDate: spec.at ?? NOW,
    ...(spec.unsignable ? { unsignableHeaders: new Set(spec.unsignable) } : {}),
  });
  return toSigned(signed as HttpRequest);
}

async function smithyPresign(spec: SmithySpec & { expiresIn: number }): Promise<SignedRequest> {
  const signed = await signer(spec).presign(smithyRequest(spec), { signingDate: spec.at ?? NOW, expiresIn: spec.expiresIn });
  return toSigned(signed as HttpRequest);
}

// Request edits, keeping headers and rawHeaders consistent.
function headerList(req: SignedRequest): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i < req.rawHeaders!.length; i += 2) out.push([req.rawHeaders![i]!, req.rawHeaders![i + 1]!]);
  return out;
}
function setHeader(req: SignedRequest, name: string, value: string): SignedRequest {
  const list = headerList(req).filter(([k]) => k.toLowerCase() !== name);
  list.push([name, value]);
  return { ...req, ...fromHeaderList(list) };
}
function addHeader(req: SignedRequest, name: string, value: string): SignedRequest {
  return { ...req, ...fromHeaderList([...headerList(req), [name, value]]) };
}
function removeHeader(req: SignedRequest, name: string): SignedRequest {
  return { ...req, ...fromHeaderList(headerList(req).filter(([k]) => k.toLowerCase() !== name)) };
}
function editAuthorization(req: SignedRequest, edit: (a: string) => string): SignedRequest {
  return setHeader(req, 'authorization', edit(String(req.headers['authorization'])));
}

async function rejectsWith(
  p: Promise<unknown>,
  cls: abstract new (...args: never[]) => KmsError,
  type: string,
  message: string,
): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    assert.equal((e as KmsError).type, type);
    assert.equal((e as KmsError).message, message);
    return true;
  });
}
const invalid = (p: Promise<unknown>, message: string) => rejectsWith(p, InvalidSignatureException, 'InvalidSignatureException', message);
const incomplete = (p: Promise<unknown>, message: string) => rejectsWith(p, IncompleteSignatureException, 'IncompleteSignatureException', message);

// ---------------------------------------------------------------------------------------------

describe('verifySigV4: requests signed by @smithy/signature-v4 (JS SDK v3)', () => {
  it('verifies a KMS Encrypt request and returns the caller', async () => {
    const req = await smithySign();
    assert.match(String(req.headers['authorization']), /SignedHeaders=[^,]*x-amz-content-sha256/);
    const opts = options();
    const v = await verifySigV4(req, opts);
    assert.deepEqual(v, { accessKeyId: 'AKIDKEYHOLDTEST01', date: '20240820', region: 'eu-west-1', service: 'kms', principal: ALICE });
    assert.deepEqual(opts.calls, [['AKIDKEYHOLDTEST01', undefined]]);
  });

  it('without rawHeaders (headers object only)', async () => {
    const { rawHeaders: _unused, ...req } = await smithySign();
    assert.equal((await verifySigV4(req, options())).accessKeyId, 'AKIDKEYHOLDTEST01');
  });

  it('passes X-Amz-Security-Token to lookup and returns it', async () => {
    const req = await smithySign({ creds: BOB_CREDS, region: 'ap-southeast-2' });
    const opts = options();
    const v = await verifySigV4(req, opts);
    assert.deepEqual(v, {
      accessKeyId: BOB_CREDS.accessKeyId, date: '20240820', region: 'ap-southeast-2', service: 'kms',
      sessionToken: BOB_CREDS.sessionToken, principal: BOB,
    });
    assert.deepEqual(opts.calls, [[BOB_CREDS.accessKeyId, BOB_CREDS.sessionToken]]);
  });

  it('any region; any of the accepted services', async () => {
    for (const region of ['us-east-1', 'cn-north-1', 'us-gov-west-1', 'local']) {
      const v = await verifySigV4(await smithySign({ region }), options());
      assert.equal(v.region, region);
    }
    const xks = await smithySign({ service: 'kms-xks-proxy' });
    assert.equal((await verifySigV4(xks, options({ services: ['kms', 'kms-xks-proxy'] }))).service, 'kms-xks-proxy');
  });

  it('query strings (repeated names, unsorted, odd characters), odd paths and header whitespace', async () => {
    const req = await smithySign({
      method: 'POST',
      path: '/a%20b/./c//%E2%82%AC/x/../d~e_f.g-h/',
      query: { zeta: '1', b: 'caf\u00e9 +&=/?', a: ['z', 'y!*\'()', ''], 'k/ey': 'v=1&2', empty: '', A: 'upper', '\u{1F600}': '\u00a0' },
      headers: {
        host: 'kms.local:4566',
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': 'TrentService.Encrypt',
        'x-custom': '  lots   of \t spaces  ',
        'x-inner': 'a   b\t\tc d',
        'x-latin1': 'caf\u00e9',
      },
    });
    assert.match(req.rawQuery, /%F0%9F%98%80=%C2%A0/);
    const v = await verifySigV4(req, options());
    assert.equal(v.accessKeyId, 'AKIDKEYHOLDTEST01');
    // the same wire request with a different path does not verify
    await invalid(verifySigV4({ ...req, rawPath: '/a%20b/c/%E2%82%AC/d~e_f.g-h' }, options()), MISMATCH);
    // nor with a changed query value
    await invalid(verifySigV4({ ...req, rawQuery: req.rawQuery.replace('zeta=1', 'zeta=2') }, options()), MISMATCH);
  });

  it('verifies a presigned (query-string) request, including a session token', async () => {
    const req = await smithyPresign({ creds: BOB_CREDS, expiresIn: 300, at: new Date(NOW.getTime() - 4 * MIN) });
    assert.equal(req.headers['authorization'], undefined);
    assert.match(req.rawQuery, /X-Amz-Algorithm=AWS4-HMAC-SHA256/);
    const v = await verifySigV4(req, options());
    assert.equal(v.accessKeyId, BOB_CREDS.accessKeyId);
    assert.equal(v.sessionToken, BOB_CREDS.sessionToken);
    // the body is covered too
    await invalid(verifySigV4({ ...req, body: Buffer.from('{}') }, options()), MISMATCH);
  });

  it('rejects expired, early, doubly-authenticated and incomplete presigned requests', async () => {
    const at = new Date(Date.UTC(2024, 7, 20, 23, 0, 0));
    await invalid(
      verifySigV4(await smithyPresign({ expiresIn: 60, at }), options()),
      'Signature expired: 20240820T230100Z is now earlier than 20240820T230802Z',
    );
    await invalid(
      verifySigV4(await smithyPresign({ expiresIn: 60, at: new Date(NOW.getTime() + 6 * MIN) }), options()),
      'Signature not yet current: 20240820T231402Z is still later than 20240820T231302Z (20240820T230802Z + 5 min.)',
    );
    const ok = await smithyPresign({ expiresIn: 300 });
    await incomplete(
      verifySigV4(setHeader(ok, 'authorization', 'AWS4-HMAC-SHA256 Credential=x'), options()),
      'Only one authentication method may be used: the Authorization header or the X-Amz-Algorithm query parameter.',
    );
    await incomplete(
      verifySigV4({ ...ok, rawQuery: ok.rawQuery.replace(/&?X-Amz-Signature=[0-9a-f]+/, '') }, options()),
      "AWS query-string parameters must include 'X-Amz-Signature'. Re-examine the query-string parameters.",
    );
    await incomplete(
      verifySigV4({ ...ok, rawQuery: ok.rawQuery + '&X-Amz-Signature=00' }, options()),
      "The query string contains more than one 'X-Amz-Signature' parameter.",
    );
  });

  it('matches AWS published SigV4 test-suite vectors (get-vanilla, get-vanilla-query-order-key-case)', async () => {
    const at = new Date(Date.UTC(2015, 7, 30, 12, 36, 0));
    const lookup = async () => ({ secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', principal: ALICE });
    const base = (rawQuery: string, sig: string): SignedRequest => ({
      method: 'GET', rawPath: '/', rawQuery, body: Buffer.alloc(0),
      ...fromHeaderList([
        ['Host', 'example.amazonaws.com'],
        ['X-Amz-Date', '20150830T123600Z'],
        ['Authorization', `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=${sig}`],
      ]),
    });
    const opts = { now: at, services: ['service'], lookup };
    await verifySigV4(base('', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'), opts);
    await verifySigV4(base('Param2=value2&Param1=value1', 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500'), opts);
  });
});

// ---------------------------------------------------------------------------------------------
// botocore (aws-cli v1 / boto3) as the independent signer

const BOTOCORE_SCRIPT = String.raw`
import sys, json, base64, datetime
try:
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
except ImportError as e:
    print("NO_BOTOCORE: %s" % e, file=sys.stderr)
    sys.exit(3)
out = {}
for job in json.load(sys.stdin):
    t = datetime.datetime.strptime(job["time"], "%Y%m%dT%H%M%SZ")
    botocore.auth.get_current_datetime = lambda t=t: t
    req = AWSRequest(method=job["method"], url=job["url"], data=base64.b64decode(job["body"]))
    for k, v in job["headers"]:
        req.headers[k] = v   # HTTPHeaders: setting a name twice keeps both values
    creds = Credentials(job["akid"], job["secret"], job.get("token"))
    if job.get("presign"):
        signer = botocore.auth.SigV4QueryAuth(creds, job["service"], job["region"], expires=job["presign"])
    else:
        signer = botocore.auth.SigV4Auth(creds, job["service"], job["region"])
    signer.add_auth(req)
    body = req.body or b""
    if isinstance(body, str):
        body = body.encode("utf-8")
    out[job["id"]] = {"method": req.method, "url": req.url, "headers": [[k, v] for k, v in req.headers.items()],
                      "body": base64.b64encode(body).decode()}
print(json.dumps(out))
`;

interface BotoJob {
  id: string;
  method: string;
  url: string;
  headers: Array<[string, string]>;
  body: string;
  creds?: Creds;
  region?: string;
  service?: string;
  time?: string;
  presign?: number;
}

const KMS_URL = 'http://127.0.0.1:4566/';
const botoJobs: BotoJob[] = [
  {
    id: 'encrypt',
    method: 'POST',
    url: KMS_URL,
    headers: [
      ['X-Amz-Target', 'TrentService.Encrypt'],
      ['Content-Type', 'application/x-amz-json-1.1'],
      ['User-Agent', 'aws-cli/1.45.11 md/Botocore#1.43.11 ua/2.1 os/linux'],
    ],
    body: '{"KeyId": "alias/app", "Plaintext": "aGVsbG8gY2xp"}',
  },
  {
    id: 'session',
    method: 'POST',
    url: KMS_URL,
    headers: [
      ['X-Amz-Target', 'TrentService.Decrypt'],
      ['Content-Type', 'application/x-amz-json-1.1'],
    ],
    body: '{"CiphertextBlob": "AQIDAHg="}',
    creds: BOB_CREDS,
    region: 'eu-central-1',
  },
  {
    id: 'odd',
    method: 'POST',
    url: 'http://127.0.0.1:4566/a%20b/./c//%E2%82%AC/x/../d~e/?b=caf%C3%A9%20%2B&a=z&a=y%21%2A&k%2Fey=v%3D1&empty=&A=upper',
    headers: [
      ['X-Amz-Target', 'TrentService.Encrypt'],
      ['Content-Type', 'application/x-amz-json-1.1'],
      ['X-Multi', 'first'],
      ['X-Multi', '  second   value '],
      ['X-Spaces', '  a   b  '],
    ],
    body: '{"KeyId": "k", "Plaintext": "eA=="}',
  },
  {
    id: 'date-header',
    method: 'POST',
    url: KMS_URL,
    headers: [
      ['X-Amz-Target', 'TrentService.ListKeys'],
      ['Content-Type', 'application/x-amz-json-1.1'],
      ['Date', 'placeholder, replaced by botocore'],
    ],
    body: '{}',
  },
  {
    id: 'presign',
    method: 'GET',
    url: 'http://127.0.0.1:4566/?Action=GetCallerIdentity&Version=2011-06-15',
    headers: [],
    body: '',
    presign: 60,
    time: '20240820T230702Z',
  },
];

interface BotoSigned {
  method: string;
  url: string;
  headers: Array<[string, string]>;
  body: string;
}

/** Turns botocore's output into what Node's http server would hand us (urllib3 adds Host and Content-Length). */
function fromBoto(s: BotoSigned): SignedRequest {
  const url = new URL(s.url);
  const body = Buffer.from(s.body, 'base64');
  const list: Array<[string, string]> = [...s.headers];
  if (!list.some(([k]) => k.toLowerCase() === 'host')) list.unshift(['Host', url.host]);
  list.push(['Content-Length', String(body.length)], ['amz-sdk-request', 'attempt=1']);
  // The request target exactly as urllib3 sends it (new URL() would normalise the path).
  const target = s.url.slice(s.url.indexOf('/', s.url.indexOf('://') + 3));
  const q = target.indexOf('?');
  return {
    method: s.method,
    rawPath: q < 0 ? target : target.slice(0, q),
    rawQuery: q < 0 ? '' : target.slice(q + 1),
    ...fromHeaderList(list),
    body,
  };
}

describe('verifySigV4: requests signed by botocore SigV4Auth (aws-cli, boto3)', () => {
  let signed: Record<string, SignedRequest> | undefined;
  let skipReason = '';

  before(() => {
    const input = botoJobs.map((j) => {
      const c = j.creds ?? ALICE_CREDS;
      return {
        id: j.id, method: j.method, url: j.url, headers: j.headers, body: Buffer.from(j.body).toString('base64'),
        akid: c.accessKeyId, secret: c.secretAccessKey, token: c.sessionToken ?? null,
        region: j.region ?? 'us-east-1', service: j.service ?? 'kms', time: j.time ?? '20240820T230802Z', presign: j.presign ?? 0,
      };
    });
    const r = spawnSync('python3', ['-c', BOTOCORE_SCRIPT], { input: JSON.stringify(input), encoding: 'utf8', timeout: 60_000 });
    const missing = (r.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT' || r.status === 3;
    if (missing) {
      skipReason = `python3 with botocore is not available: ${r.error?.message ?? r.stderr.trim()}`;
      if (process.env['CI'] === 'true') throw new Error(skipReason);
      return;
    }
    if (r.status !== 0) throw new Error(`botocore signer failed (${r.status}): ${r.stderr}`);
    const out = JSON.parse(r.stdout) as Record<string, BotoSigned>;
    signed = Object.fromEntries(Object.entries(out).map(([k, v]) => [k, fromBoto(v)]));
  });

  const get = (t: { skip(msg?: string): void }, id: string): SignedRequest | undefined => {
    if (signed === undefined) {
      t.skip(skipReason);
      return undefined;
    }
    return signed[id]!;
  };

  it('verifies an Encrypt request the way aws-cli sends it (no x-amz-content-sha256)', async (t) => {
    const req = get(t, 'encrypt');
    if (!req) return;
    assert.equal(req.headers['x-amz-content-sha256'], undefined);
    assert.match(String(req.headers['authorization']), /SignedHeaders=content-type;host;x-amz-date;x-amz-target, /);
    const v = await verifySigV4(req, options());
    assert.deepEqual(v, { accessKeyId: 'AKIDKEYHOLDTEST01', date: '20240820', region: 'us-east-1', service: 'kms', principal: ALICE });
  });

  it('with a session token', async (t) => {
    const req = get(t, 'session');
    if (!req) return;
    const v = await verifySigV4(req, options());
    assert.equal(v.sessionToken, BOB_CREDS.sessionToken);
    assert.equal(v.region, 'eu-central-1');
    assert.deepEqual(v.principal, BOB);
  });

  it('odd path and query, a repeated header, whitespace runs', async (t) => {
    const req = get(t, 'odd');
    if (!req) return;
    assert.equal(req.headers['x-multi'], 'first,   second   value ');
    await verifySigV4(req, options());
    // botocore signed both values in order: only one of them does not verify
    await invalid(verifySigV4(setHeader(req, 'x-multi', 'first'), options()), MISMATCH);
  });

  it('with the Date header instead of X-Amz-Date', async (t) => {
    const req = get(t, 'date-header');
    if (!req) return;
    assert.equal(req.headers['x-amz-date'], undefined);
    assert.equal(req.headers['date'], 'Tue, 20 Aug 2024 23:08:02 -0000');
    await verifySigV4(req, options());
  });

  it('a presigned URL from SigV4QueryAuth', async (t) => {
    const req = get(t, 'presign');
    if (!req) return;
    assert.equal(req.headers['authorization'], undefined);
    await verifySigV4(req, options());
  });

  it('a body changed after signing does not verify', async (t) => {
    const req = get(t, 'encrypt');
    if (!req) return;
    await invalid(verifySigV4({ ...req, body: Buffer.from('{"KeyId": "alias/other", "Plaintext": "aGVsbG8gY2xp"}') }, options()), MISMATCH);
  });
});

// ---------------------------------------------------------------------------------------------

describe('verifySigV4: rejections (exact class and message)', () => {
  it('no Authorization header', async () => {
    const req = removeHeader(await smithySign(), 'authorization');
    await rejectsWith(verifySigV4(req, options()), MissingAuthenticationTokenException, 'MissingAuthenticationTokenException', 'Request is missing Authentication Token');
    await rejectsWith(verifySigV4(setHeader(req, 'authorization', '  '), options()), MissingAuthenticationTokenException, 'MissingAuthenticationTokenException', 'Request is missing Authentication Token');
  });

  it('wrong algorithm, or not SigV4 at all', async () => {
    const req = await smithySign();
    await incomplete(
      verifySigV4(editAuthorization(req, (a) => a.replace('AWS4-HMAC-SHA256 ', 'AWS4-HMAC-SHA512 ')), options()),
      "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'. Use 'AWS4-HMAC-SHA256'.",
    );
    await incomplete(
      verifySigV4(setHeader(req, 'authorization', 'Bearer eyJhbGciOi.x.y'), options()),
      "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter.",
    );
  });

  it('missing Signature / SignedHeaders / Credential parameters, duplicated parameter', async () => {
    const req = await smithySign();
    await incomplete(verifySigV4(editAuthorization(req, (a) => a.replace(/, Signature=[0-9a-f]+/, '')), options()), "Authorization header requires 'Signature' parameter.");
    await incomplete(verifySigV4(editAuthorization(req, (a) => a.replace(/Signature=[0-9a-f]+/, 'Signature=')), options()), "Authorization header requires 'Signature' parameter.");
    await incomplete(verifySigV4(editAuthorization(req, (a) => a.replace(/ SignedHeaders=[^,]+,/, '')), options()), "Authorization header requires 'SignedHeaders' parameter.");
    await incomplete(verifySigV4(editAuthorization(req, (a) => a.replace(/Credential=[^,]+, /, '')), options()), "Authorization header requires 'Credential' parameter.");
    await incomplete(verifySigV4(editAuthorization(req, (a) => a + ', Signature=00'), options()), "Authorization header contains more than one 'Signature' parameter.");
  });

  it('missing or malformed date', async () => {
    const req = await smithySign();
    await incomplete(
      verifySigV4(removeHeader(req, 'x-amz-date'), options()),
      "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
    );
    await incomplete(
      verifySigV4(setHeader(req, 'x-amz-date', '2024-08-20T23:08:02Z'), options()),
      "Date must be in ISO-8601 'basic format'. Got '2024-08-20T23:08:02Z'. See http://en.wikipedia.org/wiki/ISO_8601",
    );
    await incomplete(
      verifySigV4(setHeader(req, 'x-amz-date', '20240230T230802Z'), options()),
      "Date must be in ISO-8601 'basic format'. Got '20240230T230802Z'. See http://en.wikipedia.org/wiki/ISO_8601",
    );
  });

  it('malformed credential scope; signed headers without host; bad region', async () => {
    const req = await smithySign();
    await incomplete(
      verifySigV4(editAuthorization(req, (a) => a.replace('/kms/aws4_request', '/aws4_request')), options()),
      'Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/aws4_request; got 4.',
    );
    await incomplete(
      verifySigV4(editAuthorization(req, (a) => a.replace('/aws4_request', '/aws5_request')), options()),
      "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ",
    );
    await incomplete(
      verifySigV4(editAuthorization(req, (a) => a.replace(';host;', ';')), options()),
      "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
    );
    await incomplete(verifySigV4(await smithySign({ region: 'us-east-1:123456789012:key' }), options()), 'Credential should be scoped to a valid region. ');
  });

  it('unknown access key', async () => {
    const req = await smithySign({ creds: { accessKeyId: 'AKIDNOBODY', secretAccessKey: 'x' } });
    await rejectsWith(verifySigV4(req, options()), UnrecognizedClientException, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
    // a known temporary key with a wrong or missing token is the lookup's call: here it is unknown
    const noToken = removeHeader(await smithySign({ creds: BOB_CREDS }), 'x-amz-security-token');
    await rejectsWith(verifySigV4(noToken, options()), UnrecognizedClientException, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
  });

  it('wrong secret', async () => {
    const req = await smithySign({ creds: { ...ALICE_CREDS, secretAccessKey: 'not-the-secret' } });
    await invalid(verifySigV4(req, options()), MISMATCH);
  });

  it('body changed after signing (x-amz-content-sha256 signed) and a bogus content hash', async () => {
    const req = await smithySign();
    await invalid(
      verifySigV4({ ...req, body: Buffer.from(ENCRYPT_BODY.replace('test', 'tesT')) }, options()),
      "The provided 'x-amz-content-sha256' header does not match what was computed.",
    );
    const unsignedPayload = await smithySign({
      headers: { host: 'kms.local:4566', 'x-amz-target': 'TrentService.Encrypt', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    await invalid(verifySigV4(unsignedPayload, options()), "The provided 'x-amz-content-sha256' header does not match what was computed.");
  });

  it('X-Amz-Target changed after signing, or not signed at all', async () => {
    const req = await smithySign();
    await invalid(verifySigV4(setHeader(req, 'x-amz-target', 'TrentService.Decrypt'), options()), MISMATCH);
    const unsigned = await smithySign({ unsignable: ['x-amz-target'] });
    assert.doesNotMatch(String(unsigned.headers['authorization']), /x-amz-target/);
    await invalid(verifySigV4(unsigned, options()), "The 'x-amz-target' header must be included in SignedHeaders.");
  });

  it('unsigned headers added by a proxy still verify', async () => {
    let req = await smithySign();
    req = addHeader(req, 'X-Forwarded-For', '10.0.0.1');
    req = addHeader(req, 'user-agent', 'second-agent');
    req = addHeader(req, 'x-amzn-trace-id', 'Root=1-abc');
    assert.equal((await verifySigV4(req, options())).accessKeyId, 'AKIDKEYHOLDTEST01');
  });

  it('a signed header removed, or a signed header repeated', async () => {
    const req = await smithySign();
    await invalid(verifySigV4(removeHeader(req, 'amz-sdk-invocation-id'), options()), MISMATCH);
    await invalid(verifySigV4(removeHeader(req, 'host'), options()), MISMATCH);
    await invalid(verifySigV4(addHeader(req, 'amz-sdk-request', 'attempt=2; max=3'), options()), MISMATCH);
    // a listed header that is absent is a mismatch even if the client signed it "empty"
    const opts = options();
    await invalid(verifySigV4(removeHeader(req, 'x-amz-content-sha256'), opts), MISMATCH);
    assert.equal(opts.calls.length, 1);
  });

  it('a signed header named like a member of Object.prototype but not sent is a mismatch, not a crash', async () => {
    const req = await smithySign();
    for (const name of ['constructor', 'tostring', 'hasownproperty']) {
      const listed = editAuthorization(req, (a) => a.replace('SignedHeaders=', `SignedHeaders=${name};`));
      await invalid(verifySigV4(listed, options()), MISMATCH);
    }
  });

  it('malformed signature value', async () => {
    const req = await smithySign();
    await invalid(verifySigV4(editAuthorization(req, (a) => a.replace(/Signature=[0-9a-f]+/, 'Signature=' + 'zz'.repeat(32))), options()), MISMATCH);
    await invalid(verifySigV4(editAuthorization(req, (a) => a.replace(/Signature=([0-9a-f]+)/, 'Signature=$1aa')), options()), MISMATCH);
  });

  it('expired: 6 min 19 s old, with AWS wording; lookup is not consulted', async () => {
    const opts = options();
    const req = await smithySign({ at: new Date(Date.UTC(2024, 7, 20, 23, 1, 43)) });
    await invalid(verifySigV4(req, opts), 'Signature expired: 20240820T230143Z is now earlier than 20240820T230302Z (20240820T230802Z - 5 min.)');
    assert.equal(opts.calls.length, 0);
    await invalid(
      verifySigV4(await smithySign({ at: new Date(NOW.getTime() - 6 * MIN) }), options()),
      'Signature expired: 20240820T230202Z is now earlier than 20240820T230302Z (20240820T230802Z - 5 min.)',
    );
  });

  it('not yet current: 6 min ahead', async () => {
    await invalid(
      verifySigV4(await smithySign({ at: new Date(NOW.getTime() + 6 * MIN) }), options()),
      'Signature not yet current: 20240820T231402Z is still later than 20240820T231302Z (20240820T230802Z + 5 min.)',
    );
  });

  it('exactly 5 min either way is accepted (server clock sub-second part ignored); maxSkewMs is honoured', async () => {
    const opts = options({ now: new Date(NOW.getTime() + 999) });
    await verifySigV4(await smithySign({ at: new Date(NOW.getTime() - 5 * MIN) }), opts);
    await verifySigV4(await smithySign({ at: new Date(NOW.getTime() + 5 * MIN) }), opts);
    const old = await smithySign({ at: new Date(NOW.getTime() - 10 * MIN) });
    await verifySigV4(old, options({ maxSkewMs: 15 * MIN }));
    await invalid(
      verifySigV4(old, options({ maxSkewMs: 9 * MIN })),
      'Signature expired: 20240820T225802Z is now earlier than 20240820T225902Z (20240820T230802Z - 9 min.)',
    );
  });

  it("service 'iam' when only 'kms' is accepted", async () => {
    const opts = options();
    await invalid(verifySigV4(await smithySign({ service: 'iam' }), opts), "Credential should be scoped to correct service: 'kms'. ");
    assert.equal(opts.calls.length, 0);
  });

  it('credential scope date differs from X-Amz-Date', async () => {
    const req = editAuthorization(await smithySign(), (a) => a.replace('/20240820/', '/20240819/'));
    await invalid(
      verifySigV4(req, options()),
      "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20240819' != '20240820', from '20240820T230802Z'.",
    );
  });

  it('a Date header is converted to UTC, zone offset included', async () => {
    const req = removeHeader(await smithySign(), 'x-amz-date');
    await invalid(
      verifySigV4(setHeader(req, 'date', 'Tue, 20 Aug 2024 23:08:02 -0300'), options()),
      "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20240820' != '20240821', from 'Tue, 20 Aug 2024 23:08:02 -0300'.",
    );
    await incomplete(
      verifySigV4(setHeader(req, 'date', '2024-08-20 23:08:02'), options()),
      "Date must be an RFC 7231 HTTP-date, e.g. 'Tue, 20 Aug 2024 23:01:43 GMT'. Got '2024-08-20 23:08:02'.",
    );
  });

  it('errors from lookup propagate unchanged', async () => {
    const boom = new Error('identity store down');
    await assert.rejects(verifySigV4(await smithySign(), options({ lookup: async () => Promise.reject(boom) })), (e) => e === boom);
  });
});

describe('verifySigV4: signing-key cache', () => {
  it('derives the signing key once for a steady client (10,000 verifications)', async () => {
    clearSigV4KeyCache();
    const req = await smithySign();
    const opts = options();
    for (let i = 0; i < 10_000; i++) await verifySigV4(req, opts);
    assert.deepEqual(sigV4KeyCacheStats(), { size: 1, derivations: 1, hits: 9_999 });
  });

  it('a changed secret for the same access key is not served from the cache', async () => {
    clearSigV4KeyCache();
    const req = await smithySign();
    await verifySigV4(req, options());
    const rotated = new Map(users);
    rotated.set(ALICE_CREDS.accessKeyId, { secret: 'rotated-secret', principal: ALICE });
    const lookup = async (akid: string) => {
      const u = rotated.get(akid);
      return u && { secretAccessKey: u.secret, principal: u.principal };
    };
    await invalid(verifySigV4(req, options({ lookup })), MISMATCH);
    await verifySigV4(await smithySign({ creds: { ...ALICE_CREDS, secretAccessKey: 'rotated-secret' } }), options({ lookup }));
    assert.deepEqual(sigV4KeyCacheStats(), { size: 1, derivations: 2, hits: 1 });
  });

  it('forgets keys (and the secrets kept with them) once their date is more than a day old', async () => {
    clearSigV4KeyCache();
    const DAY = 24 * 60 * MIN;
    const at = (days: number) => new Date(NOW.getTime() + days * DAY);
    await verifySigV4(await smithySign({ at: at(0) }), options({ now: at(0) }));
    await verifySigV4(await smithySign({ at: at(1) }), options({ now: at(1) }));
    assert.equal(sigV4KeyCacheStats().size, 2, 'the day before stays (requests near midnight)');
    await verifySigV4(await smithySign({ at: at(2) }), options({ now: at(2) }));
    assert.equal(sigV4KeyCacheStats().size, 2, 'two days old: dropped');
    await verifySigV4(await smithySign({ at: at(40) }), options({ now: at(40) }));
    assert.deepEqual(sigV4KeyCacheStats(), { size: 1, derivations: 4, hits: 0 });
  });

  it('stays bounded', async () => {
    clearSigV4KeyCache();
    for (let i = 0; i < 1100; i++) await verifySigV4(await smithySign({ region: `r-${i}` }), options());
    const s = sigV4KeyCacheStats();
    assert.equal(s.derivations, 1100);
    assert.ok(s.size <= 1024, `size ${s.size}`);
  });
});

describe('verifySigV4: parse memos (credential scope, signed headers, X-Amz-Date)', () => {
  it('a malformed scope, header list or date fails the same way every time, also right after a good request with the same parts', async () => {
    const good = await smithySign();
    for (let i = 0; i < 3; i++) {
      assert.equal((await verifySigV4(good, options())).principal, ALICE);
      await incomplete(
        verifySigV4(editAuthorization(good, (a) => a.replace('/aws4_request', '/aws5_request')), options()),
        "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. ",
      );
      await incomplete(verifySigV4(editAuthorization(good, (a) => a.replace(';host;', ';')), options()), "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.");
      await incomplete(
        verifySigV4(setHeader(good, 'x-amz-date', '20240230T230802Z'), options()),
        "Date must be in ISO-8601 'basic format'. Got '20240230T230802Z'. See http://en.wikipedia.org/wiki/ISO_8601",
      );
    }
  });

  it('what is remembered is still checked against each request: the clock, the service, the scope date and the signature', async () => {
    const req = await smithySign();
    const first = (await verifySigV4(req, options())).region;
    // Same credential text and date text, now 10 minutes later: expired.
    await assert.rejects(verifySigV4(req, options({ now: new Date(NOW.getTime() + 10 * MIN) })), (e: unknown) => e instanceof InvalidSignatureException && /^Signature expired/.test(e.message));
    // Same scope text, only 'iam' accepted.
    await invalid(verifySigV4(req, options({ services: ['iam'] })), "Credential should be scoped to correct service: 'iam'. ");
    // Same scope and signed headers, another signature: mismatch.
    await invalid(verifySigV4(editAuthorization(req, (a) => a.replace(/Signature=[0-9a-f]{4}/, 'Signature=0000')), options()), MISMATCH);
    // Another credential (region) after the memo holds the first: its own scope is used.
    const other = await smithySign({ region: 'eu-west-3' });
    assert.equal((await verifySigV4(other, options())).region, 'eu-west-3');
    assert.notEqual(first, 'eu-west-3');
    assert.equal((await verifySigV4(req, options())).region, first);
  });

  it('stays correct past its bound (600 distinct scopes, more than it keeps)', async () => {
    for (let i = 0; i < 600; i++) assert.equal((await verifySigV4(await smithySign({ region: `m-${i}` }), options())).region, `m-${i}`);
  });
});
