import type pg from 'pg';
import type { ResolvedConfig } from '../config/resolve.js';
import { redactUrl } from '../db/redactUrl.js';
import { sqlStateOf } from '../db/sqlState.js';
import { toSql } from '../db/queryable.js';
import { isConfigError, isDatabaseError, isNotFoundError, isUsageError, isValidationError } from '../errors.js';
import { createHindsight } from '../hindsight.js';
import { send, type Route } from '../http/server.js';
import { storeTables } from '../store/tables.js';
import type { ConsoleContext, PageHandler } from './context.js';
import { eventPage } from './event.js';
import { gatePage } from './gate.js';
import { homePage } from './home.js';
import { html, layout, type Page } from './html.js';
import { ledgerPage } from './ledger.js';
import { statePage } from './state.js';
import { CONSOLE_CSS } from './style.js';
import { verifyRunPage } from './verifyRun.js';
import { verifyRunsPage } from './verifyRuns.js';

/**
 * The read-only web console: server-rendered pages on the shared HTTP listener (which
 * enforces loopback-by-default, the token and the CSP). Pages only read: hindsight's
 * history, projections, verification runs, gate, and the listener's and updaters' status.
 */

export interface ConsoleOptions {
  /** The pool every page reads through; the caller owns it (and ends it). */
  pool: pg.Pool;
}

const PAGES: ReadonlyMap<string, PageHandler> = new Map([
  ['/', homePage],
  ['/aggregate', ledgerPage],
  ['/state', statePage],
  ['/event', eventPage],
  ['/verify', verifyRunsPage],
  ['/verify/run', verifyRunPage],
  ['/gate', gatePage],
]);

/** One route answering the console's paths (and /console.css); any other path is left to the next route. */
export function consoleRoutes(config: ResolvedConfig, options: ConsoleOptions): Route {
  const context: ConsoleContext = {
    config,
    hs: createHindsight(config),
    pool: options.pool,
    sql: toSql(options.pool),
    tables: storeTables(config.quotedSchema),
  };
  return async (_request, response, url) => {
    if (url.pathname === '/console.css') {
      response.setHeader('Cache-Control', 'max-age=300');
      send(response, 200, 'text/css; charset=utf-8', CONSOLE_CSS);
      return true;
    }
    const page = PAGES.get(url.pathname);
    if (!page) return false;
    if (url.searchParams.has('token')) {
      // The listener has set the cookie from it: take the token out of the address bar, the
      // history and every link built from this URL.
      const rest = new URLSearchParams(url.searchParams);
      rest.delete('token');
      const query = rest.toString();
      response.setHeader('Location', `${url.pathname}${query ? `?${query}` : ''}`);
      send(response, 303, 'text/plain; charset=utf-8', 'the token is now in a cookie\n');
      return true;
    }
    let result: Page;
    try {
      result = await page(context, url);
    } catch (error) {
      result = errorPage(error);
    }
    response.setHeader('Cache-Control', 'no-store');
    send(response, result.status ?? 200, 'text/html; charset=utf-8', layout(result));
    return true;
  };
}

/**
 * What went wrong, as a page that says so: a bad parameter is a 400, something absent a
 * 404, a database that refused or could not be reached a 503 (its message without any
 * password). Anything else is a bug: it is rethrown, and the listener answers 500 without
 * detail (and reports it through its onError).
 */
function errorPage(error: unknown): Page {
  const message = redactUrl(error instanceof Error ? error.message : String(error));
  const back = html`<p><a href="/">back to the overview</a></p>`;
  if (isValidationError(error) || isConfigError(error) || isUsageError(error)) {
    return { status: 400, title: 'Bad request', body: html`<p class="problem">${message}</p>${back}` };
  }
  if (isNotFoundError(error)) return { status: 404, title: 'Not found', body: html`<p class="problem">${message}</p>${back}` };
  const sqlState = sqlStateOf(error) ?? (isDatabaseError(error) ? error.sqlState : undefined);
  // Class 22 (data exception): a value from the URL the key column's type refuses, e.g. "abc" for a bigint id.
  if (sqlState?.startsWith('22')) {
    return { status: 400, title: 'Bad request', body: html`<p class="problem">The database refused a value from this page's parameters: ${message}</p>${back}` };
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (sqlState !== undefined || isDatabaseError(error) || (typeof code === 'string' && /^E[A-Z]+$/.test(code))) {
    return { status: 503, title: 'The database could not answer', body: html`<p class="problem">${message}</p>${back}` };
  }
  throw error;
}
