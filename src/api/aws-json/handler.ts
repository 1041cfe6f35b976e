import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import {
  isKmsError, KMSInternalException, RequestTooLargeException, SerializationException, UnknownOperationException,
  type KmsError,
} from '../../errors/index.js';
import { checkGrantTokens, invoke, recordAuthFailure, type CallContext, type Operation, type Services } from '../../operations/index.js';
import { verifySigV4 } from '../sigv4.js';
import { describeRefusedCredential } from '../refused-credential.js';
import { KMS_ROUTES, KMS_TARGET_PREFIX, type Route } from './kms-routes.js';
import { KEYHOLD_ROUTES, KEYHOLD_TARGET_PREFIX } from './keyhold-routes.js';
import { CLOUDTRAIL_ROUTES, CLOUDTRAIL_SIGNING_NAME, CLOUDTRAIL_TARGET_PREFIXES } from './cloudtrail-routes.js';
import { decodeWire, encodeOutputJson } from './schema.js';
import { healthResponse, type HealthSource } from '../admin/health.js';
import { BodyTooLarge, readBody, sourceIpOf } from '../body.js';
import { handleQuery } from '../aws-query/handler.js';

export interface HandlerOptions {
  readonly services: Services;
  /** Largest accepted request body; a larger one is refused while streaming (HTTP 413). */
  readonly maxBodyBytes: number;
  readonly health: HealthSource;
}

const JSON_CONTENT_TYPE = 'application/x-amz-json-1.1';
/** X-Amz-Target -> route: the KMS model's operations, Keyhold's own under their prefix, and CloudTrail's (signed as `cloudtrail`). */
const routes: ReadonlyMap<string, RouteEntry> = new Map<string, RouteEntry>([
  ...Object.entries(KMS_ROUTES as Record<string, Route>).map(([name, route]) => [KMS_TARGET_PREFIX + name, routeEntry(name, route, 'kms')] as const),
  ...Object.entries(KEYHOLD_ROUTES as Record<string, Route>).map(([name, route]) => [KEYHOLD_TARGET_PREFIX + name, routeEntry(name, route, 'kms')] as const),
  ...Object.entries(CLOUDTRAIL_ROUTES as Record<string, Route>).flatMap(([name, route]) =>
    CLOUDTRAIL_TARGET_PREFIXES.map((prefix) => [prefix + name, routeEntry(name, route, CLOUDTRAIL_SIGNING_NAME)] as const)),
]);

interface RouteEntry {
  readonly opName: string;
  readonly route: Route;
  /** The signing name the credential scope must carry, as the list verifySigV4 takes. */
  readonly services: readonly string[];
  /**
   * The operation as invoke runs it: its input is the raw body, parsed and validated inside invoke
   * so that a malformed request is audited too. Built once per route, not per request.
   */
  readonly parsingOp: Operation<Buffer, unknown>;
}

function routeEntry(opName: string, route: Route, service: string): RouteEntry {
  const op = route.op;
  const parsingOp: Operation<Buffer, unknown> = {
    ...op,
    run: (s, c, raw, a) => {
      const input = parseBody(route, raw);
      checkGrantTokens(op.name, input);
      return op.run(s, c, input, a);
    },
  };
  return { opName, route, services: Object.freeze([service]), parsingOp };
}

/**
 * What a request's audit event and condition keys need of its connection: the peer address and the
 * TLS version, both fixed for the connection's life (a handshake is done before any request). Read
 * once per connection: each read is a call into the socket's native handle.
 */
interface ConnectionFacts {
  readonly sourceIp: string;
  readonly tlsVersion: string | undefined;
}
const connectionFacts = new WeakMap<object, ConnectionFacts>();
function connectionFactsOf(req: IncomingMessage): ConnectionFacts {
  const socket = req.socket;
  let facts = connectionFacts.get(socket);
  if (facts === undefined) {
    const tls = socket as Partial<TLSSocket>;
    const tlsVersion = typeof tls.getProtocol === 'function' ? (tls.getProtocol() ?? undefined) : undefined;
    facts = { sourceIp: sourceIpOf(req), tlsVersion };
    // An address not known yet (a socket already closed) is not remembered.
    if (facts.sourceIp !== '') connectionFacts.set(socket, facts);
  }
  return facts;
}

/*
 * Answers are written together at the end of the event-loop turn in which they were computed,
 * not one by one as each finishes. Under load one turn finishes many requests; writing their
 * answers back to back means the clients' side is woken once per turn instead of once per answer
 * (on a VM each wake-up of an idle peer is an inter-processor interrupt, and it showed as the most
 * expensive part of a request in bench/). An answer waits at most for the rest of its own turn.
 */
interface PendingAnswer {
  res: ServerResponse;
  status: number;
  headers: Record<string, string | number>;
  body: string;
}
let pendingAnswers: PendingAnswer[] = [];

function flushAnswers(): void {
  const batch = pendingAnswers;
  pendingAnswers = [];
  for (const a of batch) {
    if (a.res.destroyed) continue;
    a.res.writeHead(a.status, a.headers);
    a.res.end(a.body);
  }
}

function send(res: ServerResponse, status: number, requestId: string, body: string, errorType?: string): void {
  const headers: Record<string, string | number> = {
    'content-type': JSON_CONTENT_TYPE,
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': requestId,
  };
  if (errorType) headers['x-amzn-errortype'] = errorType;
  if (pendingAnswers.push({ res, status, headers, body }) === 1) setImmediate(flushAnswers);
}

/** One serializer for every error (STYLE.md §7): client errors as they are, server faults generic. */
function sendError(res: ServerResponse, requestId: string, e: unknown, svc: Services): void {
  let err: KmsError;
  if (isKmsError(e) && e.fault === 'client') {
    err = e;
  } else {
    // The cause goes to the server log with the request id, never to the client.
    svc.log('error', 'request failed', { requestId, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    err = isKmsError(e) && e.type !== 'KMSInternalException' ? e : new KMSInternalException('An internal error occurred. Retry the request.');
  }
  send(res, err.status, requestId, JSON.stringify({ __type: err.type, message: err.message }), err.type);
}

function parseBody(route: Route, body: Buffer): unknown {
  let json: unknown;
  try {
    json = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
  } catch {
    throw new SerializationException('The request body is not valid JSON.');
  }
  return decodeWire(route.input, json);
}

/**
 * The HTTP entry point for the AWS JSON 1.1 services: body with a cap, SigV4, X-Amz-Target through
 * the typed table, input schema, then the operation (which audits before we answer).
 */
export function createHandler(opts: HandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const svc = opts.services;
  const lookup = (akid: string, token: string | undefined) => svc.identity.authenticate(akid, token);
  return (req, res) => {
    const requestId = randomUUID();
    void handle(req, res, requestId).catch((e) => sendError(res, requestId, e, svc));
  };

  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const path = req.url ?? '/';
    if (req.method === 'GET' && (path === '/healthz' || path.startsWith('/healthz?'))) {
      const h = opts.health();
      const body = JSON.stringify(healthResponse(h));
      res.writeHead(h.healthy ? 200 : 503, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    let body: Buffer;
    try {
      body = await readBody(req, opts.maxBodyBytes);
    } catch (e) {
      if (e instanceof BodyTooLarge) {
        res.shouldKeepAlive = false;
        throw new RequestTooLargeException(`The request body is larger than ${opts.maxBodyBytes} bytes.`);
      }
      throw e;
    }
    const rawContentType = req.headers['content-type'];
    const contentType = rawContentType === JSON_CONTENT_TYPE ? rawContentType : String(rawContentType ?? '').split(';')[0]!.trim().toLowerCase();
    if (req.method === 'POST' && contentType === 'application/x-www-form-urlencoded') {
      // IAM and STS speak the query protocol; their answers are XML.
      await handleQuery(svc, req, res, requestId, body);
      return;
    }
    const target = req.headers['x-amz-target'];
    const entry = typeof target === 'string' ? routes.get(target) : undefined;
    const opName = entry?.opName;
    const route = entry?.route;
    if (req.method !== 'POST' || !route) {
      throw new UnknownOperationException(
        typeof target === 'string' ? `The operation ${target} is not known to this service.` : 'The request has no X-Amz-Target header naming an operation.',
      );
    }
    if (contentType !== JSON_CONTENT_TYPE && contentType !== 'application/x-amz-json-1.0') {
      throw new UnknownOperationException(`Content-Type must be ${JSON_CONTENT_TYPE}.`);
    }
    const { sourceIp: ip, tlsVersion } = connectionFactsOf(req);
    const userAgent = String(req.headers['user-agent'] ?? '');

    let verified;
    const signed = { method: req.method, rawPath: path.split('?')[0]!, rawQuery: path.includes('?') ? path.slice(path.indexOf('?') + 1) : '', headers: req.headers, rawHeaders: req.rawHeaders, body };
    try {
      verified = await verifySigV4(signed, { now: new Date(), services: entry.services, lookup });
    } catch (e) {
      const errorCode = isKmsError(e) ? e.type : 'InternalFailure';
      const refusedCredential = await describeRefusedCredential(svc, signed, entry.services, errorCode).catch(() => undefined);
      const scope = /Credential=([A-Z0-9]{4,128})\/\d{8}\/([a-z0-9-]{1,32})\//.exec(String(req.headers.authorization ?? ''));
      const akid = scope?.[1] ?? /Credential=([A-Z0-9]{4,128})\//.exec(String(req.headers.authorization ?? ''))?.[1];
      await recordAuthFailure(svc, {
        requestId, eventName: opName!, eventSource: route.op.eventSource, region: scope?.[2] ?? '', sourceIp: ip, userAgent,
        accessKeyId: akid, errorCode, refusedCredential,
      }).catch(() => {
        throw new KMSInternalException('The request could not be recorded in the audit log.');
      });
      throw e;
    }

    svc.identity.noteUse(verified.accessKeyId, { time: Date.now(), serviceName: verified.service, region: verified.region }).catch(() => {});
    const call: CallContext = {
      requestId,
      accountId: verified.principal.accountId,
      principal: verified.principal,
      region: verified.region,
      sourceIp: ip,
      userAgent,
      secureTransport: tlsVersion !== undefined,
      tlsVersion,
    };
    // Parsing and validation run inside invoke, so that a malformed request is audited too.
    const output = await invoke(svc, call, entry.parsingOp, body);
    send(res, 200, requestId, encodeOutputJson(route.output, output));
  }
}
