import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedRequest {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: Record<string, any>;
}

/** How the receiver answers its n-th request (0-based): a status, or 'hang' to never answer. */
export type Answer = (n: number, request: ReceivedRequest) => number | 'hang';

export interface WebhookReceiver {
  readonly url: string;
  readonly received: ReceivedRequest[];
  /** Changes how the next requests are answered. */
  answer(answer: Answer): void;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 that records every request and answers as told (default 200). */
export async function startWebhookReceiver(answer: Answer = () => 200): Promise<WebhookReceiver> {
  const received: ReceivedRequest[] = [];
  let current = answer;
  const hanging: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: Record<string, any> = {};
      try {
        json = JSON.parse(body) as Record<string, any>;
      } catch {
        // recorded as it came
      }
      const request = { path: req.url ?? '', headers: req.headers, body, json };
      const status = current(received.length, request);
      received.push(request);
      if (status === 'hang') {
        hanging.push(res);
        return;
      }
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    answer(next) {
      current = next;
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
