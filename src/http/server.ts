import { timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { UsageError } from '../errors.js';

/**
 * The one HTTP listener of `hindsight run` and `hindsight console`: metrics, health and the
 * read-only console are route handlers on it. Node's own http module is enough for a
 * handful of GET routes; no framework is needed.
 *
 * Safety rules, enforced here so no route can forget them:
 * - bound to loopback by default; any other address needs a token, or it refuses to start;
 * - with a token, every request but /healthz needs `Authorization: Bearer <token>` or the
 *   cookie `hindsight_token` (set by visiting any page once with `?token=<token>`);
 * - every response carries a Content-Security-Policy that allows only this origin's own
 *   scripts and styles, and no framing.
 */

/** A route handler: answers and returns true, or returns false to let the next one try. */
export type Route = (request: http.IncomingMessage, response: http.ServerResponse, url: URL) => Promise<boolean> | boolean;

export interface HttpOptions {
  /** `host:port`, e.g. `127.0.0.1:9464`; port 0 picks a free one. */
  listen: string;
  /** Required when the host is not a loopback address. */
  token?: string;
  routes: readonly Route[];
  /** A request whose handler threw: the response is a 500 either way. */
  onError?: (error: unknown, url: string) => void;
}

export interface HttpServer {
  /** The address actually bound, e.g. `http://127.0.0.1:9464`. */
  readonly url: string;
  close(): Promise<void>;
}

export const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const TOKEN_COOKIE = 'hindsight_token';

/** Parses `host:port` (IPv6 as `[::1]:9464`), refusing anything else with a clear message. */
export function parseListen(listen: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(listen);
  const port = match ? Number(match[3]) : NaN;
  if (!match || !(port >= 0 && port <= 65535)) {
    throw new UsageError(`--http must be host:port, e.g. 127.0.0.1:9464 or [::1]:9464, got ${JSON.stringify(listen)}`);
  }
  return { host: (match[1] ?? match[2])!, port };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export async function startHttpServer(options: HttpOptions): Promise<HttpServer> {
  const { host, port } = parseListen(options.listen);
  if (!isLoopback(host) && !options.token) {
    throw new UsageError(`binding ${host} (not a loopback address) exposes the console and metrics to the network: give --token (or HINDSIGHT_HTTP_TOKEN), or bind 127.0.0.1`);
  }
  const server = http.createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => {
      options.onError?.(error, request.url ?? '');
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else response.destroy();
    });
  });

  async function handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    response.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
    response.setHeader('X-Content-Type-Options', 'nosniff');
    response.setHeader('Referrer-Policy', 'no-referrer');
    const url = new URL(request.url ?? '/', 'http://hindsight.invalid');
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      send(response, 405, 'text/plain; charset=utf-8', 'read-only: only GET and HEAD are served\n');
      return;
    }
    if (options.token && url.pathname !== '/healthz' && !authorised(request, url, options.token, response)) {
      send(response, 401, 'text/plain; charset=utf-8', 'a token is required: send Authorization: Bearer <token>, or open any page once with ?token=<token>\n');
      return;
    }
    for (const route of options.routes) {
      if (await route(request, response, url)) return;
    }
    send(response, 404, 'text/plain; charset=utf-8', `no page at ${url.pathname}\n`);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shown}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A bearer header or the cookie; a `?token=` query sets the cookie so a browser needs it once. */
function authorised(request: http.IncomingMessage, url: URL, token: string, response: http.ServerResponse): boolean {
  const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
  if (bearer !== undefined) return sameSecret(bearer, token);
  const cookie = (request.headers.cookie ?? '')
    .split(';')
    .map((part) => part.trim())
    .find((part) => part.startsWith(`${TOKEN_COOKIE}=`));
  if (cookie !== undefined) return sameSecret(decodeURIComponent(cookie.slice(TOKEN_COOKIE.length + 1)), token);
  const query = url.searchParams.get('token');
  if (query !== null && sameSecret(query, token)) {
    response.setHeader('Set-Cookie', `${TOKEN_COOKIE}=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`);
    return true;
  }
  return false;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Writes a whole response (HEAD gets the headers only). */
export function send(response: http.ServerResponse, status: number, contentType: string, body: string): void {
  response.statusCode = status;
  response.setHeader('Content-Type', contentType);
  response.setHeader('Content-Length', Buffer.byteLength(body));
  response.end(response.req.method === 'HEAD' ? undefined : body);
}
