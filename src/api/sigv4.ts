/**
 * Server-side AWS Signature Version 4 verification (AWS4-HMAC-SHA256).
 *
 * Two ways to carry the signature are accepted:
 *  - the `Authorization` header (what the SDKs and aws-cli send), and
 *  - query-string presigning (`X-Amz-Algorithm`, `X-Amz-Credential`, ... in the URL).
 *
 * The body hash is always computed here: botocore sends no `x-amz-content-sha256`, and when a
 * client does send it (and signs it) it must equal the computed hash.
 *
 * Cost for a steady client: the body SHA-256, the canonical-request SHA-256 (both one-shot
 * `crypto.hash` calls) and one HMAC for the signature. The four-step key derivation runs once per
 * (access key, secret, date, region, service).
 */
import { createHmac, hash, timingSafeEqual } from 'node:crypto';
import {
  IncompleteSignatureException,
  InvalidSignatureException,
  MissingAuthenticationTokenException,
  UnrecognizedClientException,
} from '../errors/index.js';

export interface SignedRequest {
  /** HTTP method as received, e.g. 'POST'. */
  method: string;
  /** Path as sent, before '?', e.g. '/'. */
  rawPath: string;
  /** Query string as sent (no '?'), '' when none. */
  rawQuery: string;
  /** Node's IncomingMessage.headers (lower-case names). */
  headers: Record<string, string | string[] | undefined>;
  /** Node's IncomingMessage.rawHeaders. When given, repeated headers are canonicalised exactly from it. */
  rawHeaders?: string[];
  /** The complete request body; hashed here. */
  body: Buffer;
}

export interface VerifiedSignature<P> {
  accessKeyId: string;
  /** Scope date, yyyymmdd. */
  date: string;
  region: string;
  service: string;
  sessionToken?: string;
  principal: P;
}

export interface VerifyOptions<P> {
  now: Date;
  /** Accepted service names in the credential scope, e.g. ['kms']. */
  services: readonly string[];
  /** Resolves an access key (and session token, if any); undefined when unknown. */
  lookup(accessKeyId: string, sessionToken: string | undefined): Promise<{ secretAccessKey: string; principal: P } | undefined>;
  /** Allowed clock difference, default 5 minutes. */
  maxSkewMs?: number;
}

const ALGORITHM = 'AWS4-HMAC-SHA256';
const TERMINATOR = 'aws4_request';
const DEFAULT_MAX_SKEW_MS = 5 * 60_000;
const MAX_PRESIGN_EXPIRES_S = 604_800;

const MSG_MISSING_TOKEN = 'Request is missing Authentication Token';
const MSG_UNRECOGNIZED = 'The security token included in the request is invalid.';
const MSG_MISMATCH =
  'The request signature we calculated does not match the signature you provided. ' +
  'Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
const MSG_NEEDS_CREDENTIAL = "Authorization header requires 'Credential' parameter.";
const MSG_NEEDS_SIGNATURE = "Authorization header requires 'Signature' parameter.";
const MSG_NEEDS_SIGNED_HEADERS = "Authorization header requires 'SignedHeaders' parameter.";
const MSG_NEEDS_DATE = "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.";
const MSG_NEEDS_HOST = "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.";
const MSG_BAD_REGION = 'Credential should be scoped to a valid region. ';
const MSG_CONTENT_SHA = "The provided 'x-amz-content-sha256' header does not match what was computed.";
const MSG_TARGET_UNSIGNED = "The 'x-amz-target' header must be included in SignedHeaders.";
const MSG_TWO_METHODS =
  'Only one authentication method may be used: the Authorization header or the X-Amz-Algorithm query parameter.';

// Compiled once.
const ISO_BASIC = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const HTTP_DATE =
  /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) (GMT|UTC|UT|[+-]\d{4})$/;
const MONTHS: Readonly<Record<string, number>> = {
  Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11,
};
const HEX_SIGNATURE = /^[0-9a-fA-F]{64}$/;
const REGION = /^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$/;
const EXPIRES = /^[1-9]\d{0,6}$/;

/** RFC 3986 unreserved characters: A-Z a-z 0-9 - . _ ~ */
const UNRESERVED = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const ch = String.fromCharCode(c);
  UNRESERVED[c] = /[A-Za-z0-9\-._~]/.test(ch) ? 1 : 0;
}
const PCT: readonly string[] = Array.from({ length: 256 }, (_, b) => '%' + b.toString(16).toUpperCase().padStart(2, '0'));

// ---------------------------------------------------------------------------------------------
// Signing-key cache

interface CachedKey {
  /**
   * The secret the key was derived from. The cache lives beside the identity store, which holds
   * the same secrets in memory; keeping it here costs no extra exposure, and comparing it (two
   * server-side values, nothing the caller sends) is what makes a changed secret miss the cache.
   */
  secret: string;
  key: Buffer;
  /** The scope's date, YYYYMMDD. */
  date: string;
}

/** The UTC day before a YYYYMMDD date, in the same form. */
function dayBefore(date: string): string {
  const d = new Date(Date.UTC(Number(date.slice(0, 4)), Number(date.slice(4, 6)) - 1, Number(date.slice(6, 8)) - 1));
  return d.toISOString().slice(0, 10).replace(/-/g, '');
}

/**
 * Drops keys (and the secrets kept with them) whose scope date is older than the day before `date`:
 * no request can use them again (a signature's date is within minutes of the server's clock), so a
 * deleted, deactivated or expired credential's secret is not kept here for longer than about two days.
 */
function dropStaleKeys(date: string): void {
  const oldest = dayBefore(date);
  for (const [id, k] of signingKeys) if (k.date < oldest) signingKeys.delete(id);
}

const CACHE_MAX = 1024;
const signingKeys = new Map<string, CachedKey>();
let derivations = 0;
let cacheHits = 0;
let lastDerivationDate = '';

function signingKey(accessKeyId: string, secret: string, date: string, region: string, service: string): Buffer {
  // '/' cannot occur in any of the parts: they come from splitting the credential on '/'.
  const id = `${accessKeyId}/${date}/${region}/${service}`;
  const hit = signingKeys.get(id);
  if (hit !== undefined && hit.secret === secret) {
    cacheHits++;
    return hit.key;
  }
  derivations++;
  if (date !== lastDerivationDate) {
    // Once per day seen (derivations are rare: one per access key, scope and day).
    lastDerivationDate = date;
    dropStaleKeys(date);
  }
  const kDate = createHmac('sha256', 'AWS4' + secret).update(date, 'utf8').digest();
  const kRegion = createHmac('sha256', kDate).update(region, 'utf8').digest();
  const kService = createHmac('sha256', kRegion).update(service, 'utf8').digest();
  const key = createHmac('sha256', kService).update(TERMINATOR, 'utf8').digest();
  if (hit !== undefined) signingKeys.delete(id);
  else if (signingKeys.size >= CACHE_MAX) {
    // Oldest derivation first: a full cache means many scopes or keys, and each entry is
    // re-derived at most once a day per scope, so insertion order is a fair eviction order.
    const oldest = signingKeys.keys().next();
    if (oldest.done !== true) signingKeys.delete(oldest.value);
  }
  signingKeys.set(id, { secret, key, date });
  return key;
}

/** Counters of the signing-key cache (for tests and metrics). */
export function sigV4KeyCacheStats(): { size: number; derivations: number; hits: number } {
  return { size: signingKeys.size, derivations, hits: cacheHits };
}

/** Empties the signing-key cache and resets its counters (tests; after revoking credentials). */
export function clearSigV4KeyCache(): void {
  signingKeys.clear();
  lastDerivationDate = '';
  derivations = 0;
  cacheHits = 0;
}

// ---------------------------------------------------------------------------------------------
// Parse memos
//
// A client sends the same credential scope and signed-header list on every request of a day, and
// the same X-Amz-Date on every request of a second. Parsing them is pure (the same text always
// gives the same result or the same error), so successful parses are remembered by their exact
// text; failures are not (they throw before anything is stored). What is checked against the
// request (date in scope, service, clock skew, the signature itself) is still checked every time.

const MEMO_MAX = 256;
const scopes = new Map<string, Readonly<Scope>>();
const signedHeaderLists = new Map<string, readonly string[]>();

function memo<T>(cache: Map<string, T>, text: string, parse: (text: string) => T): T {
  const hit = cache.get(text);
  if (hit !== undefined) return hit;
  const value = Object.freeze(parse(text));
  if (cache.size >= MEMO_MAX) cache.clear();
  cache.set(text, value);
  return value;
}

let lastIsoText: string | undefined;
let lastIsoMs: number | undefined;

function parseIsoBasicMemo(s: string): number | undefined {
  if (s === lastIsoText) return lastIsoMs;
  const ms = parseIsoBasic(s);
  if (ms !== undefined) {
    lastIsoText = s;
    lastIsoMs = ms;
  }
  return ms;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Echo of client-supplied text in an error message: printable ASCII only, bounded. */
function echo(s: string): string {
  let out = '';
  const n = Math.min(s.length, 64);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    out += c >= 0x20 && c <= 0x7e ? s[i] : '?';
  }
  return s.length > 64 ? out + '...' : out;
}

function pad2(n: number): string {
  return n < 10 ? '0' + n : String(n);
}

/** yyyyMMddTHHmmssZ */
function isoBasic(ms: number): string {
  const d = new Date(ms);
  return (
    String(d.getUTCFullYear()).padStart(4, '0') + pad2(d.getUTCMonth() + 1) + pad2(d.getUTCDate()) + 'T' +
    pad2(d.getUTCHours()) + pad2(d.getUTCMinutes()) + pad2(d.getUTCSeconds()) + 'Z'
  );
}

/** Milliseconds of a strict ISO-8601 basic timestamp, or undefined. */
function parseIsoBasic(s: string): number | undefined {
  const m = ISO_BASIC.exec(s);
  if (m === null) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
  return Number.isFinite(ms) && isoBasic(ms) === s ? ms : undefined;
}

/** Milliseconds of an RFC 7231 IMF-fixdate (also the '-0000' zone that Python's formatdate writes), or undefined. */
function parseHttpDate(s: string): number | undefined {
  const m = HTTP_DATE.exec(s);
  if (m === null) return undefined;
  const day = Number(m[1]);
  const month = MONTHS[m[2]!]!;
  const year = Number(m[3]);
  const hh = Number(m[4]);
  const mm = Number(m[5]);
  const ss = Number(m[6]);
  if (hh > 23 || mm > 59 || ss > 59) return undefined;
  let ms = Date.UTC(year, month, day, hh, mm, ss);
  const check = new Date(ms);
  if (check.getUTCDate() !== day || check.getUTCMonth() !== month) return undefined;
  const zone = m[7]!;
  if (zone[0] === '+' || zone[0] === '-') {
    const offH = Number(zone.slice(1, 3));
    const offM = Number(zone.slice(3, 5));
    if (offH > 23 || offM > 59) return undefined;
    const off = (offH * 60 + offM) * 60_000;
    ms += zone[0] === '+' ? -off : off;
  }
  return ms;
}

function single(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Trim, and collapse runs of spaces/tabs to one space (SigV4 "Trimall"). */
function trimAll(v: string): string {
  const n = v.length;
  let clean = true;
  if (n > 0) {
    const first = v.charCodeAt(0);
    const last = v.charCodeAt(n - 1);
    if (first === 32 || first === 9 || last === 32 || last === 9) clean = false;
  }
  for (let i = 0; clean && i < n; i++) {
    const c = v.charCodeAt(i);
    if (c === 9 || (c === 32 && v.charCodeAt(i + 1) === 32)) clean = false;
  }
  if (clean) return v;
  let out = '';
  let pendingSpace = false;
  for (let i = 0; i < n; i++) {
    const c = v.charCodeAt(i);
    if (c === 32 || c === 9) {
      pendingSpace = out.length > 0;
      continue;
    }
    if (pendingSpace) {
      out += ' ';
      pendingSpace = false;
    }
    out += v[i];
  }
  return out;
}

/** Appends the canonical encoding of one byte. */
function encByte(b: number): string {
  return UNRESERVED[b] === 1 ? String.fromCharCode(b) : PCT[b]!;
}

/** Encodes a character that is not a byte (code point > 0xFF) as its UTF-8 bytes. */
function encWide(s: string, i: number): { out: string; next: number } {
  const cp = s.codePointAt(i)!;
  const bytes = Buffer.from(String.fromCodePoint(cp), 'utf8');
  let out = '';
  for (const b of bytes) out += PCT[b]!;
  return { out, next: i + (cp > 0xffff ? 2 : 1) };
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/**
 * Canonical form of one query name or value as sent: percent-escapes are decoded to bytes and
 * every byte is re-encoded (unreserved literal, the rest as upper-case %XX). Characters 0x80-0xFF
 * are the raw bytes Node decoded as latin1. '+' is a literal plus.
 */
function canonicalComponent(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; ) {
    const c = s.charCodeAt(i);
    if (c === 37 /* % */ && i + 2 < s.length) {
      const h = hexVal(s.charCodeAt(i + 1));
      const l = hexVal(s.charCodeAt(i + 2));
      if (h >= 0 && l >= 0) {
        out += encByte(h * 16 + l);
        i += 3;
        continue;
      }
    }
    if (c < 256) {
      out += encByte(c);
      i++;
    } else {
      const w = encWide(s, i);
      out += w.out;
      i = w.next;
    }
  }
  return out;
}

/** Decodes a canonical component (only unreserved characters and %XX) to a UTF-8 string. */
function decodeCanonical(s: string): string {
  if (s.indexOf('%') < 0) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; ) {
    if (s.charCodeAt(i) === 37) {
      bytes.push(hexVal(s.charCodeAt(i + 1)) * 16 + hexVal(s.charCodeAt(i + 2)));
      i += 3;
    } else bytes.push(s.charCodeAt(i++));
  }
  return Buffer.from(bytes).toString('utf8');
}

interface QueryParam {
  name: string; // canonical (encoded)
  value: string; // canonical (encoded)
}

function parseQuery(rawQuery: string): QueryParam[] {
  const out: QueryParam[] = [];
  if (rawQuery === '') return out;
  for (const piece of rawQuery.split('&')) {
    if (piece === '') continue;
    const eq = piece.indexOf('=');
    const name = eq < 0 ? piece : piece.slice(0, eq);
    const value = eq < 0 ? '' : piece.slice(eq + 1);
    out.push({ name: canonicalComponent(name), value: canonicalComponent(value) });
  }
  return out;
}

function canonicalQueryString(params: readonly QueryParam[], exclude?: string): string {
  if (params.length === 0) return '';
  const kept = exclude === undefined ? params.slice() : params.filter((p) => p.name !== exclude);
  kept.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  let out = '';
  for (let i = 0; i < kept.length; i++) out += (i === 0 ? '' : '&') + kept[i]!.name + '=' + kept[i]!.value;
  return out;
}

/**
 * Canonical URI for non-S3 services: remove empty and dot segments from the path as sent, then
 * URI-encode it once more ('/' kept), as botocore and @smithy/signature-v4 do.
 */
function canonicalUri(rawPath: string): string {
  if (rawPath === '/' || rawPath === '') return '/';
  const segments: string[] = [];
  for (const seg of rawPath.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') segments.pop();
    else segments.push(seg);
  }
  const normalized =
    (rawPath.startsWith('/') ? '/' : '') + segments.join('/') + (segments.length > 0 && rawPath.endsWith('/') ? '/' : '');
  if (normalized === '') return '/';
  let out = '';
  for (let i = 0; i < normalized.length; ) {
    const c = normalized.charCodeAt(i);
    if (c === 47 /* / */) {
      out += '/';
      i++;
    } else if (c < 256) {
      out += encByte(c);
      i++;
    } else {
      const w = encWide(normalized, i);
      out += w.out;
      i = w.next;
    }
  }
  return out;
}

function formatSkew(ms: number): string {
  return ms % 60_000 === 0 ? `${ms / 60_000} min.` : `${ms / 1000} sec.`;
}

// ---------------------------------------------------------------------------------------------
// Parsing the two authentication forms

interface ParsedAuth {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  /** ISO-8601 basic timestamp used in the string to sign. */
  longDate: string;
  signedHeaders: string;
  signedNames: readonly string[];
  signature: string;
  sessionToken: string | undefined;
  canonicalQuery: string;
}

interface AuthParams {
  credential: string | undefined;
  signedHeaders: string | undefined;
  signature: string | undefined;
}

function parseAuthorizationParams(rest: string): AuthParams {
  const params: AuthParams = { credential: undefined, signedHeaders: undefined, signature: undefined };
  for (const part of rest.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    let field: keyof AuthParams;
    if (name === 'Credential') field = 'credential';
    else if (name === 'SignedHeaders') field = 'signedHeaders';
    else if (name === 'Signature') field = 'signature';
    else continue;
    if (params[field] !== undefined) {
      throw new IncompleteSignatureException(`Authorization header contains more than one '${name}' parameter.`);
    }
    params[field] = value;
  }
  return params;
}

interface Scope {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
}

function parseCredential(credential: string): Scope {
  const parts = credential.split('/');
  if (parts.length !== 5) {
    throw new IncompleteSignatureException(
      `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/aws4_request; got ${parts.length}.`,
    );
  }
  const [accessKeyId, date, region, service, terminator] = parts as [string, string, string, string, string];
  if (terminator !== TERMINATOR) {
    throw new IncompleteSignatureException(
      `Credential should be scoped with a valid terminator: '${TERMINATOR}', not '${echo(terminator)}'. `,
    );
  }
  if (accessKeyId === '') throw new IncompleteSignatureException('Credential should contain an access key id. ');
  if (!REGION.test(region)) throw new IncompleteSignatureException(MSG_BAD_REGION);
  if (service === '') throw new IncompleteSignatureException('Credential should be scoped to a valid service. ');
  return { accessKeyId, date, region, service };
}

function parseSignedHeaders(signedHeaders: string): string[] {
  const names = signedHeaders.split(';');
  let host = false;
  for (let i = 0; i < names.length; i++) {
    const n = names[i]!.trim().toLowerCase();
    if (n === '') throw new IncompleteSignatureException('SignedHeaders contains an empty header name.');
    names[i] = n;
    if (n === 'host') host = true;
  }
  if (!host) throw new IncompleteSignatureException(MSG_NEEDS_HOST);
  return names;
}

function checkScopeDate(scope: Scope, longDate: string, from: string): void {
  const day = longDate.slice(0, 8);
  if (scope.date !== day) {
    throw new InvalidSignatureException(
      'Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: ' +
        `'${echo(scope.date)}' != '${day}', from '${echo(from)}'.`,
    );
  }
}

function checkService(scope: Scope, services: readonly string[]): void {
  if (!services.includes(scope.service)) {
    throw new InvalidSignatureException(
      `Credential should be scoped to correct service: ${services.map((s) => `'${s}'`).join(' or ')}. `,
    );
  }
}

function nowSeconds(now: Date): number {
  const t = now.getTime();
  if (!Number.isFinite(t)) throw new TypeError('verifySigV4: options.now is not a valid date');
  return Math.floor(t / 1000) * 1000;
}

function skewOf<P>(opts: VerifyOptions<P>): number {
  const skew = opts.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
  if (!Number.isFinite(skew) || skew < 0) throw new TypeError('verifySigV4: options.maxSkewMs must be a non-negative number');
  return skew;
}

function checkNotYetCurrent(reqMs: number, nowMs: number, skew: number): void {
  if (reqMs > nowMs + skew) {
    throw new InvalidSignatureException(
      `Signature not yet current: ${isoBasic(reqMs)} is still later than ${isoBasic(nowMs + skew)} ` +
        `(${isoBasic(nowMs)} + ${formatSkew(skew)})`,
    );
  }
}

function parseHeaderAuth<P>(
  req: SignedRequest,
  authorization: string,
  query: readonly QueryParam[],
  opts: VerifyOptions<P>,
): ParsedAuth {
  const value = authorization.trim();
  const space = value.indexOf(' ');
  const scheme = space < 0 ? value : value.slice(0, space);
  const params = parseAuthorizationParams(space < 0 ? '' : value.slice(space + 1));

  const amzDate = single(req.headers['x-amz-date']);
  const httpDate = amzDate === undefined ? single(req.headers['date']) : undefined;

  const missing: string[] = [];
  if (!params.credential) missing.push(MSG_NEEDS_CREDENTIAL);
  if (!params.signature) missing.push(MSG_NEEDS_SIGNATURE);
  if (!params.signedHeaders) missing.push(MSG_NEEDS_SIGNED_HEADERS);
  if (amzDate === undefined && httpDate === undefined) missing.push(MSG_NEEDS_DATE);
  if (missing.length > 0) throw new IncompleteSignatureException(missing.join(' '));
  if (scheme !== ALGORITHM) {
    throw new IncompleteSignatureException(`Unsupported AWS 'algorithm': '${echo(scheme)}'. Use '${ALGORITHM}'.`);
  }

  const scope = memo(scopes, params.credential!, parseCredential);
  const signedNames = memo(signedHeaderLists, params.signedHeaders!, parseSignedHeaders);

  let reqMs: number | undefined;
  let from: string;
  if (amzDate !== undefined) {
    from = amzDate;
    reqMs = parseIsoBasicMemo(amzDate.trim());
    if (reqMs === undefined) {
      throw new IncompleteSignatureException(
        `Date must be in ISO-8601 'basic format'. Got '${echo(amzDate)}'. See http://en.wikipedia.org/wiki/ISO_8601`,
      );
    }
  } else {
    from = httpDate!;
    reqMs = parseHttpDate(httpDate!.trim());
    if (reqMs === undefined) {
      throw new IncompleteSignatureException(
        `Date must be an RFC 7231 HTTP-date, e.g. 'Tue, 20 Aug 2024 23:01:43 GMT'. Got '${echo(httpDate!)}'.`,
      );
    }
  }
  // An X-Amz-Date that parsed is already in this form (parseIsoBasic checks the round trip).
  const longDate = amzDate !== undefined ? amzDate.trim() : isoBasic(reqMs);
  checkScopeDate(scope, longDate, from);
  checkService(scope, opts.services);

  const nowMs = nowSeconds(opts.now);
  const skew = skewOf(opts);
  if (reqMs < nowMs - skew) {
    throw new InvalidSignatureException(
      `Signature expired: ${longDate} is now earlier than ${isoBasic(nowMs - skew)} (${isoBasic(nowMs)} - ${formatSkew(skew)})`,
    );
  }
  checkNotYetCurrent(reqMs, nowMs, skew);

  const token = single(req.headers['x-amz-security-token']);
  return {
    accessKeyId: scope.accessKeyId,
    date: scope.date,
    region: scope.region,
    service: scope.service,
    longDate,
    signedHeaders: params.signedHeaders!,
    signedNames,
    signature: params.signature!,
    sessionToken: token === undefined || token === '' ? undefined : token,
    canonicalQuery: canonicalQueryString(query),
  };
}

const Q_ALGORITHM = 'X-Amz-Algorithm';
const Q_CREDENTIAL = 'X-Amz-Credential';
const Q_DATE = 'X-Amz-Date';
const Q_EXPIRES = 'X-Amz-Expires';
const Q_SIGNED_HEADERS = 'X-Amz-SignedHeaders';
const Q_SIGNATURE = 'X-Amz-Signature';
const Q_TOKEN = 'X-Amz-Security-Token';
const Q_AUTH_PARAMS: readonly string[] = [Q_ALGORITHM, Q_CREDENTIAL, Q_DATE, Q_EXPIRES, Q_SIGNED_HEADERS, Q_SIGNATURE, Q_TOKEN];
const Q_REQUIRED: readonly string[] = [Q_ALGORITHM, Q_CREDENTIAL, Q_DATE, Q_EXPIRES, Q_SIGNED_HEADERS, Q_SIGNATURE];

function parsePresigned<P>(req: SignedRequest, params: readonly QueryParam[], opts: VerifyOptions<P>): ParsedAuth {
  const found = new Map<string, string>();
  for (const p of params) {
    if (!Q_AUTH_PARAMS.includes(p.name)) continue;
    if (found.has(p.name)) throw new IncompleteSignatureException(`The query string contains more than one '${p.name}' parameter.`);
    found.set(p.name, decodeCanonical(p.value));
  }
  const missing = Q_REQUIRED.filter((n) => !found.get(n));
  if (missing.length > 0) {
    throw new IncompleteSignatureException(
      missing.map((n) => `AWS query-string parameters must include '${n}'.`).join(' ') + ' Re-examine the query-string parameters.',
    );
  }
  const algorithm = found.get(Q_ALGORITHM)!;
  if (algorithm !== ALGORITHM) {
    throw new IncompleteSignatureException(`Unsupported AWS 'algorithm': '${echo(algorithm)}'. Use '${ALGORITHM}'.`);
  }
  const scope = parseCredential(found.get(Q_CREDENTIAL)!);
  const signedHeaders = found.get(Q_SIGNED_HEADERS)!;
  const signedNames = parseSignedHeaders(signedHeaders);
  const amzDate = found.get(Q_DATE)!;
  const reqMs = parseIsoBasic(amzDate);
  if (reqMs === undefined) {
    throw new IncompleteSignatureException(
      `Date must be in ISO-8601 'basic format'. Got '${echo(amzDate)}'. See http://en.wikipedia.org/wiki/ISO_8601`,
    );
  }
  const expiresRaw = found.get(Q_EXPIRES)!;
  const expires = EXPIRES.test(expiresRaw) ? Number(expiresRaw) : NaN;
  if (!(expires >= 1 && expires <= MAX_PRESIGN_EXPIRES_S)) {
    throw new IncompleteSignatureException(
      `X-Amz-Expires must be a whole number of seconds from 1 to ${MAX_PRESIGN_EXPIRES_S}; got '${echo(expiresRaw)}'.`,
    );
  }
  checkScopeDate(scope, amzDate, amzDate);
  checkService(scope, opts.services);

  const nowMs = nowSeconds(opts.now);
  const skew = skewOf(opts);
  const expiresAt = reqMs + expires * 1000;
  if (nowMs > expiresAt) {
    throw new InvalidSignatureException(`Signature expired: ${isoBasic(expiresAt)} is now earlier than ${isoBasic(nowMs)}`);
  }
  checkNotYetCurrent(reqMs, nowMs, skew);

  const token = found.get(Q_TOKEN) ?? single(req.headers['x-amz-security-token']);
  return {
    accessKeyId: scope.accessKeyId,
    date: scope.date,
    region: scope.region,
    service: scope.service,
    longDate: amzDate,
    signedHeaders,
    signedNames,
    signature: found.get(Q_SIGNATURE)!,
    sessionToken: token === undefined || token === '' ? undefined : token,
    canonicalQuery: canonicalQueryString(params, Q_SIGNATURE),
  };
}

// ---------------------------------------------------------------------------------------------
// Canonical headers

/** The number of own enumerable keys, without building the array Object.keys would. */
function countKeys(o: object): number {
  let n = 0;
  for (const k in o) if (Object.hasOwn(o, k)) n++;
  return n;
}

/** Canonical `name:value\n` lines for the signed names, or undefined when a signed header is absent. */
function canonicalHeaders(req: SignedRequest, names: readonly string[]): string | undefined {
  const raw = req.rawHeaders;
  // No header name repeated (the usual request): Node's `headers` holds each one as sent, so the
  // lines come straight from it. A repeated name is joined (or dropped) there, so it takes the raw path.
  if (raw === undefined || raw.length === 2 * countKeys(req.headers)) {
    let out = '';
    for (const n of names) {
      const v = Object.hasOwn(req.headers, n) ? req.headers[n] : undefined; // never Object.prototype's members
      if (v === undefined) return undefined;
      out += n + ':' + (Array.isArray(v) ? v.map(trimAll).join(',') : trimAll(v)) + '\n';
    }
    return out;
  }
  const values = new Map<string, string | undefined>();
  for (const n of names) values.set(n, undefined);
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const n = raw[i]!.toLowerCase();
    if (!values.has(n)) continue;
    const prev = values.get(n);
    const v = trimAll(raw[i + 1]!);
    values.set(n, prev === undefined ? v : prev + ',' + v);
  }
  let out = '';
  for (const n of names) {
    const v = values.get(n);
    if (v === undefined) return undefined;
    out += n + ':' + v + '\n';
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/**
 * Verifies a SigV4-signed request and returns who signed it. Throws MissingAuthenticationToken-,
 * IncompleteSignature-, InvalidSignature- or UnrecognizedClientException; errors from `lookup`
 * propagate unchanged.
 */
export async function verifySigV4<P>(req: SignedRequest, opts: VerifyOptions<P>): Promise<VerifiedSignature<P>> {
  const authorization = single(req.headers['authorization']);
  const hasHeaderAuth = authorization !== undefined && authorization.trim() !== '';
  const query = parseQuery(req.rawQuery);
  const presigned = query.some((p) => p.name === Q_ALGORITHM);

  let auth: ParsedAuth;
  if (hasHeaderAuth && presigned) throw new IncompleteSignatureException(MSG_TWO_METHODS);
  if (hasHeaderAuth) auth = parseHeaderAuth(req, authorization, query, opts);
  else if (presigned) auth = parsePresigned(req, query, opts);
  else throw new MissingAuthenticationTokenException(MSG_MISSING_TOKEN);

  // The operation of a JSON-protocol request travels in X-Amz-Target: it must be covered.
  if (req.headers['x-amz-target'] !== undefined && !auth.signedNames.includes('x-amz-target')) {
    throw new InvalidSignatureException(MSG_TARGET_UNSIGNED);
  }

  const headerLines = canonicalHeaders(req, auth.signedNames);

  const creds = await opts.lookup(auth.accessKeyId, auth.sessionToken);
  if (creds === undefined) throw new UnrecognizedClientException(MSG_UNRECOGNIZED);

  if (headerLines === undefined) throw new InvalidSignatureException(MSG_MISMATCH);

  const payloadHash = hash('sha256', req.body, 'hex');
  if (auth.signedNames.includes('x-amz-content-sha256')) {
    const declared = single(req.headers['x-amz-content-sha256']);
    if (declared === undefined || declared.trim() !== payloadHash) throw new InvalidSignatureException(MSG_CONTENT_SHA);
  }

  const canonicalRequest =
    req.method + '\n' +
    canonicalUri(req.rawPath) + '\n' +
    auth.canonicalQuery + '\n' +
    headerLines + '\n' +
    auth.signedHeaders + '\n' +
    payloadHash;
  const scope = `${auth.date}/${auth.region}/${auth.service}/${TERMINATOR}`;
  const stringToSign =
    ALGORITHM + '\n' + auth.longDate + '\n' + scope + '\n' + hash('sha256', canonicalRequest, 'hex');
  const key = signingKey(auth.accessKeyId, creds.secretAccessKey, auth.date, auth.region, auth.service);
  const expected = createHmac('sha256', key).update(stringToSign, 'utf8').digest();

  if (!HEX_SIGNATURE.test(auth.signature)) throw new InvalidSignatureException(MSG_MISMATCH);
  const provided = Buffer.from(auth.signature, 'hex');
  if (!timingSafeEqual(expected, provided)) throw new InvalidSignatureException(MSG_MISMATCH);

  const result: VerifiedSignature<P> = {
    accessKeyId: auth.accessKeyId,
    date: auth.date,
    region: auth.region,
    service: auth.service,
    principal: creds.principal,
  };
  if (auth.sessionToken !== undefined) result.sessionToken = auth.sessionToken;
  return result;
}
