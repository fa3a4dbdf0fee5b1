import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { ResolvedConfig } from '../config/resolve.js';
import { toSql } from '../db/queryable.js';
import { storeTables } from '../store/tables.js';
import { workOnChunks, type ChunkWorkerOptions } from '../verify/chunks/chunkWorkers.js';
import { openChunks } from '../verify/chunks/takeChunk.js';

/**
 * How many shared verify runs this process is working on right now (a scheduled full
 * check's own run, or the helper below). The helper stays out while the count is not 0,
 * so an instance mostly checks one chunk at a time beside the writers (a check that starts
 * while the helper is mid-chunk runs beside it): more instances, not more load per
 * instance, make a shared run faster.
 */
export interface LocalChunkWork {
  busy: number;
}

export interface ChunkHelperOptions {
  connectionString: string;
  /** Names this process in verify_chunks.worker. */
  instance: string;
  local: LocalChunkWork;
  signal: AbortSignal;
  /** How often to look for chunks nobody works on. Default 2,000 ms. */
  pollMs?: number;
  onChunkTaken?: ChunkWorkerOptions['onChunkTaken'];
  onLog?: (line: string) => void;
}

/**
 * Every `hindsight run` with the verify component helps with shared runs started anywhere
 * (a scheduled full check on another instance, `hindsight verify --workers`): while this
 * process works on no chunk, it looks for a pending chunk or one whose worker died (its
 * lease ran out), and takes chunks until none is left to take. One small indexed query per
 * poll when there is nothing to do.
 */
export function startChunkHelper(config: ResolvedConfig, options: ChunkHelperOptions): { done: Promise<void> } {
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 1 });
  pool.on('error', () => undefined); // a restart of the server: the next poll says so
  const sql = toSql(pool);
  const tables = storeTables(config.quotedSchema);
  const log = options.onLog ?? (() => undefined);
  let failing = false;
  const done = (async () => {
    while (!options.signal.aborted) {
      try {
        if (options.local.busy === 0) {
          options.local.busy += 1; // taken before the first await: a check starting meanwhile sees it
          try {
            const { open, nextInMs } = await openChunks(sql, tables, undefined);
            if (open > 0 && nextInMs === 0) {
              const reported = await workOnChunks(config, { connectionString: options.connectionString, workers: 1, signal: options.signal, onChunkTaken: options.onChunkTaken, instance: options.instance });
              if (reported > 0) log(`reported ${reported} chunk${reported === 1 ? '' : 's'} of shared verify runs`);
            }
          } finally {
            options.local.busy -= 1;
          }
        }
        if (failing) log('chunk helper: working again');
        failing = false;
      } catch (error) {
        if (!failing) log(`chunk helper: ${error instanceof Error ? error.message : String(error)}; trying again`);
        failing = true;
      }
      await sleep(options.pollMs ?? 2000, undefined, { signal: options.signal }).catch(() => undefined);
    }
    await pool.end().catch(() => undefined);
  })();
  return { done };
}
