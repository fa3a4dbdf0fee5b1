import type pg from 'pg';
import type { ResolvedConfig } from '../config/resolve.js';
import type { Sql } from '../db/queryable.js';
import type { Hindsight } from '../hindsight.js';
import type { StoreTables } from '../store/tables.js';
import { formatInstant } from '../time.js';
import { html, type Page, type SafeHtml } from './html.js';

/** What every page reads with: the config, hindsight bound to it, and the pool it reads through. */
export interface ConsoleContext {
  config: ResolvedConfig;
  hs: Hindsight;
  pool: pg.Pool;
  sql: Sql;
  tables: StoreTables;
}

/** A page: reads what it shows from the URL's parameters, throws a ValidationError on bad ones. */
export type PageHandler = (ctx: ConsoleContext, url: URL) => Promise<Page>;

/** An instant (ISO-8601 UTC text) as wall time in `tz` with its offset, to the microsecond. */
export function when(isoUtc: string, tz: string): SafeHtml {
  return html`<span class="time">${formatInstant(isoUtc, tz)}</span>`;
}
