/**
 * The floor: the cheapest HTTPS answer Node can give with Keyhold's TLS settings. Whatever
 * Keyhold costs beyond this is Keyhold's; whatever this costs is TLS, HTTP parsing and the
 * event loop, which no handler can avoid.
 *
 * Run as a child process by run.ts (forked, with an IPC channel):
 *   node dist/bench/floor-server.js <server-key.pem> <server-cert.pem> [workers]
 * It reports { port } over IPC once listening, and exits when the parent goes away. With workers
 * above 1 it runs as node:cluster does for `keyhold server --workers N`: a primary that forks N
 * processes sharing one port, so a clustered Keyhold can be compared with a floor clustered alike.
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';

const [keyFile, certFile, workersArg = '1'] = process.argv.slice(2);
const workers = Number(workersArg);
if (!keyFile || !certFile || !process.send || !(Number.isInteger(workers) && workers >= 1)) {
  process.stderr.write('usage: (forked by bench/run.js) floor-server.js <key.pem> <cert.pem> [workers]\n');
  process.exit(2);
}

if (workers > 1 && cluster.isPrimary) {
  // The primary only hands connections out (round-robin, as for Keyhold's --workers).
  let listening = 0;
  cluster.on('listening', (_worker, address) => {
    if (++listening === workers) process.send!({ port: address.port });
  });
  for (let i = 0; i < workers; i++) cluster.fork();
  const stop = () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.kill();
    process.exit(0);
  };
  process.on('disconnect', stop);
  process.on('SIGTERM', stop);
} else {
  serve(keyFile, certFile);
}

function serve(keyFile: string, certFile: string): void {
  // About the size of a small KMS answer (e.g. a GenerateDataKeyWithoutPlaintext or an error body).
  const BODY = JSON.stringify({
    KeyId: 'arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000',
    CiphertextBlob: 'A'.repeat(92),
    EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
  });
  const HEADERS = {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(BODY),
    'x-amzn-requestid': '00000000-0000-4000-8000-000000000000',
  };

  // Same TLS material and settings as src/main.ts gives Keyhold: its key and certificate, TLS >= 1.2,
  // Node's default ciphers and session handling, 5 s keep-alive.
  const server = createServer({ key: readFileSync(keyFile, 'utf8'), cert: readFileSync(certFile, 'utf8'), minVersion: 'TLSv1.2' }, (req, res) => {
    if (req.method !== 'POST' || req.url !== '/') {
      res.writeHead(404, { 'content-length': 0 });
      res.end();
      return;
    }
    // Read the whole body, as Keyhold must, before answering: the request bytes are part of the load.
    req.on('data', () => {});
    req.on('end', () => {
      res.writeHead(200, HEADERS);
      res.end(BODY);
    });
  });
  server.keepAliveTimeout = 5_000;

  server.listen(0, '127.0.0.1', () => {
    if (!cluster.isWorker) process.send!({ port: (server.address() as AddressInfo).port });
  });

  // If run.ts dies without killing us, the IPC channel closes; do not linger as an orphan.
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => process.exit(0));
}
