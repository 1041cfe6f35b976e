/**
 * The AWS query protocol (form-encoded POST, XML answers) for IAM and STS, so that
 * `aws iam ...`, `aws sts ...` and @aws-sdk/client-iam / client-sts work with an endpoint override.
 * The SigV4 credential scope's service (`iam` or `sts`) selects the action table.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { isKmsError } from '../../errors/index.js';
import { invoke, recordAuthFailure, type CallContext, type Services } from '../../operations/index.js';
import { sourceIpOf } from '../body.js';
import { verifySigV4 } from '../sigv4.js';
import { describeRefusedCredential } from '../refused-credential.js';
import { Form } from './form.js';
import { QUERY_SERVICES } from './routes.js';
import { errorXml, responseXml } from './xml.js';

/** Our error types as the query protocol names them (code, HTTP status). */
const QUERY_CODES: Readonly<Record<string, readonly [string, number]>> = {
  MalformedPolicyDocumentException: ['MalformedPolicyDocument', 400],
  ValidationException: ['ValidationError', 400],
  AccessDeniedException: ['AccessDenied', 403],
  LimitExceededException: ['LimitExceeded', 409],
  UnrecognizedClientException: ['InvalidClientTokenId', 403],
  InvalidSignatureException: ['SignatureDoesNotMatch', 403],
  MissingAuthenticationTokenException: ['MissingAuthenticationToken', 403],
  ExpiredTokenException: ['ExpiredToken', 403],
  IncompleteSignatureException: ['IncompleteSignature', 400],
  SerializationException: ['MalformedInput', 400],
  NotFoundException: ['NoSuchEntity', 404],
};

function send(res: ServerResponse, status: number, requestId: string, body: string): void {
  res.writeHead(status, { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body), 'x-amzn-requestid': requestId });
  res.end(body);
}

function scopeService(req: IncomingMessage): 'iam' | 'sts' | undefined {
  const m = /Credential=[^/]+\/\d{8}\/[^/]+\/([a-z0-9-]+)\//.exec(String(req.headers.authorization ?? ''));
  return m?.[1] === 'iam' || m?.[1] === 'sts' ? m[1] : undefined;
}

export async function handleQuery(svc: Services, req: IncomingMessage, res: ServerResponse, requestId: string, body: Buffer): Promise<void> {
  const guessed = scopeService(req) ?? 'iam';
  let namespace: string = QUERY_SERVICES[guessed].namespace;
  try {
    const form = new Form(body.toString('utf8'));
    const path = req.url ?? '/';
    const ip = sourceIpOf(req);
    const userAgent = String(req.headers['user-agent'] ?? '');
    const tlsSocket = req.socket as Partial<TLSSocket>;
    const tlsVersion = typeof tlsSocket.getProtocol === 'function' ? (tlsSocket.getProtocol() ?? undefined) : undefined;
    let verified;
    const signed = { method: req.method ?? 'POST', rawPath: path.split('?')[0]!, rawQuery: path.includes('?') ? path.slice(path.indexOf('?') + 1) : '', headers: req.headers, rawHeaders: req.rawHeaders, body };
    try {
      verified = await verifySigV4(signed, { now: new Date(), services: ['iam', 'sts'], lookup: (akid: string, token: string | undefined) => svc.identity.authenticate(akid, token) });
    } catch (e) {
      const akid = /Credential=([A-Z0-9]{4,128})\//.exec(String(req.headers.authorization ?? ''))?.[1];
      const errorCode = isKmsError(e) ? e.type : 'InternalFailure';
      const refusedCredential = await describeRefusedCredential(svc, signed, ['iam', 'sts'], errorCode).catch(() => undefined);
      await recordAuthFailure(svc, {
        requestId, eventName: form.action ?? 'Unknown', eventSource: QUERY_SERVICES[guessed].eventSource, region: '', sourceIp: ip, userAgent,
        accessKeyId: akid, errorCode, refusedCredential,
      });
      throw e;
    }
    const service = QUERY_SERVICES[verified.service as 'iam' | 'sts'];
    namespace = service.namespace;
    const action = form.action;
    const route = action !== undefined && Object.hasOwn(service.routes, action) ? service.routes[action] : undefined;
    if (!route) {
      const body = errorXml(namespace, 'Sender', 'InvalidAction', `Could not find operation ${action ?? ''} for version ${form.version ?? service.version}`, requestId);
      send(res, 400, requestId, body);
      return;
    }
    svc.identity.noteUse(verified.accessKeyId, { time: svc.clock.now(), serviceName: verified.service, region: verified.region }).catch(() => {});
    const call: CallContext = {
      requestId, accountId: verified.principal.accountId, principal: verified.principal, region: verified.region,
      sourceIp: ip, userAgent, secureTransport: tlsVersion !== undefined, tlsVersion,
    };
    const op = route.op;
    // Decoding runs inside invoke, so a malformed request is audited too.
    const output = await invoke(svc, call, { ...op, run: (s, c, _f: Form, a) => op.run(s, c, route.decode(form), a) }, form);
    send(res, 200, requestId, responseXml(action!, namespace, route.encode(output), requestId));
  } catch (e) {
    let code = 'ServiceFailure';
    let status = 500;
    let message = 'An internal error occurred. Retry the request.';
    let type: 'Sender' | 'Receiver' = 'Receiver';
    if (isKmsError(e) && e.fault === 'client') {
      const mapped = QUERY_CODES[e.type];
      code = mapped?.[0] ?? e.type;
      status = mapped?.[1] ?? e.status;
      message = e.message;
      type = 'Sender';
    } else {
      svc.log('error', 'request failed', { requestId, error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
    }
    send(res, status, requestId, errorXml(namespace, type, code, message, requestId));
  }
}
