import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedAlert {
  alertId: string; rule: string; severity: string; time: string; accountId: string | null; keyArn: string | null;
  eventIds: string[]; principalArn: string | null; accessKeyId: string | null; summary: string;
}

export interface Received { at: number; body: string; alert: ReceivedAlert; signature: string; timestamp: string; path: string }

export interface WebhookReceiver {
  server: Server;
  url: string;
  port: number;
  got: Received[];
  /** Resolves with the first alert matching `rule` (and `pred`) received, or throws after `ms`. */
  waitFor(rule: string, ms: number, pred?: (r: Received) => boolean): Promise<Received>;
  /** Whether the signature header is the HMAC-SHA256 of "<timestamp>.<body>" under `secret`. */
  signedWith(r: Received, secret: string | Buffer): boolean;
  close(): Promise<void>;
}

/** A local HTTP server that takes alert webhook POSTs (answering 204), for the alert tests. */
export function webhookReceiver(port = 0): Promise<WebhookReceiver> {
  const got: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      got.push({
        at: Date.now(), body, alert: JSON.parse(body) as ReceivedAlert, path: req.url ?? '',
        signature: String(req.headers['x-keyhold-signature']), timestamp: String(req.headers['x-keyhold-timestamp']),
      });
      res.writeHead(204).end();
    });
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => {
    const p = (server.address() as AddressInfo).port;
    resolve({
      server, url: `http://127.0.0.1:${p}/hook`, port: p, got,
      async waitFor(rule, ms, pred = () => true) {
        const end = Date.now() + ms;
        for (;;) {
          const r = got.find((g) => g.alert.rule === rule && pred(g));
          if (r) return r;
          if (Date.now() > end) throw new Error(`no ${rule} alert within ${ms} ms; got ${got.map((g) => g.alert.rule).join(', ') || 'none'}`);
          await new Promise((x) => setTimeout(x, 10));
        }
      },
      signedWith(r, secret) {
        return r.signature === `sha256=${createHmac('sha256', secret).update(`${r.timestamp}.${r.body}`).digest('hex')}`;
      },
      close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
    });
  }));
}
