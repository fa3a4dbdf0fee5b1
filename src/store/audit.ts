import type { Sql } from '../db/queryable.js';
import { GENESIS_HASH, type StoreTables } from './tables.js';

/**
 * Checks the hash chains. Every event's hash must equal sha256 over its predecessor's
 * hash and its own columns (recomputed by the same SQL function the append used), the
 * sequences must run 1..n without a hole, and the head row must name the last event's
 * sequence and hash (which catches a deleted last event). The triggers stop every role
 * but the table owner and superusers from changing events; this is how changes made
 * around them are found.
 */

export type AuditProblemKind = 'hash' | 'sequence' | 'head' | 'missing-head';

export interface AuditProblem {
  kind: AuditProblemKind;
  aggregateType: string;
  aggregateId: string;
  /** The first broken event, where there is one. */
  sequence: number | null;
  globalPosition: number | null;
  message: string;
}

export interface AuditReport {
  aggregates: number;
  events: number;
  /** The first broken event of each broken chain, in (type, id) order, up to `maxProblems`. */
  problems: AuditProblem[];
}

export interface AuditOptions {
  aggregateType?: string;
  /** The canonical id; requires aggregateType. */
  aggregateId?: string;
  /** Stop collecting after this many broken chains. Default 100. */
  maxProblems?: number;
  /** Aggregates per batch. Default 500. */
  batchSize?: number;
  onProgress?: (progress: { aggregates: number; events: number }) => void;
}

/** One row per event of a page of aggregates (or one row with no event, for a head without events). */
interface ChainRow {
  aggregate_type: string;
  aggregate_id: string;
  head_version: string;
  head_hash: string;
  global_position: string | null;
  sequence: string | null;
  position_in_chain: string | null;
  hash_ok: boolean | null;
  hash: string | null;
}

export async function audit(sql: Sql, tables: StoreTables, options: AuditOptions = {}): Promise<AuditReport> {
  const maxProblems = options.maxProblems ?? 100;
  const batchSize = options.batchSize ?? 500;
  const report: AuditReport = { aggregates: 0, events: 0, problems: [] };
  let after: [string, string] = ['', ''];
  for (;;) {
    const rows = await checkPage(sql, tables, options, after, batchSize);
    const chains = groupByAggregate(rows);
    if (chains.length === 0) break;
    for (const chain of chains) {
      report.aggregates += 1;
      report.events += chain.filter((row) => row.sequence !== null).length;
      const problem = firstProblem(chain);
      if (problem && report.problems.length < maxProblems) report.problems.push(problem);
    }
    options.onProgress?.({ aggregates: report.aggregates, events: report.events });
    const last = chains[chains.length - 1]![0]!;
    after = [last.aggregate_type, last.aggregate_id];
    if (chains.length < batchSize || report.problems.length >= maxProblems) break;
  }
  if (report.problems.length < maxProblems) {
    report.problems.push(...(await eventsWithoutHead(sql, tables, options, maxProblems - report.problems.length)));
  }
  return report;
}

/**
 * A page of heads and all their events, in one statement so that both come from one
 * snapshot: an append committing while the audit runs can never look like a head ahead
 * of its events. Each event's hash is recomputed by the function the append used.
 */
function checkPage(sql: Sql, tables: StoreTables, options: AuditOptions, after: [string, string], batchSize: number): Promise<ChainRow[]> {
  return sql.query<ChainRow>(
    `WITH page AS (
       SELECT h.aggregate_type, h.aggregate_id, h.version, h.last_hash FROM ${tables.heads} h
       WHERE ($1::text IS NULL OR h.aggregate_type = $1::text) AND ($2::text IS NULL OR h.aggregate_id = $2::text)
         AND (h.aggregate_type, h.aggregate_id) > ($3::text COLLATE "C", $4::text COLLATE "C")
       ORDER BY h.aggregate_type, h.aggregate_id
       LIMIT $5::int
     )
     SELECT p.aggregate_type, p.aggregate_id, p.version::text AS head_version, encode(p.last_hash, 'hex') AS head_hash,
            e.global_position::text AS global_position, e.sequence::text AS sequence,
            CASE WHEN e.sequence IS NOT NULL THEN (row_number() OVER w)::text END AS position_in_chain,
            e.hash = ${tables.eventHash}(coalesce(lag(e.hash) OVER w, ${GENESIS_HASH}), e.event_id, e.aggregate_type,
              e.aggregate_id, e.sequence, e.event_type, e.schema_version, e.payload, e.metadata, e.source,
              e.source_commit_lsn, e.source_ordinal, e.source_xid, e.transaction_id, e.occurred_at, e.recorded_at) AS hash_ok,
            encode(e.hash, 'hex') AS hash
     FROM page p
     LEFT JOIN ${tables.events} e ON e.aggregate_type = p.aggregate_type AND e.aggregate_id = p.aggregate_id
     WINDOW w AS (PARTITION BY p.aggregate_type, p.aggregate_id ORDER BY e.sequence)
     ORDER BY p.aggregate_type, p.aggregate_id, e.sequence`,
    [options.aggregateType ?? null, options.aggregateId ?? null, after[0], after[1], batchSize],
  );
}

function groupByAggregate(rows: ChainRow[]): ChainRow[][] {
  const chains: ChainRow[][] = [];
  for (const row of rows) {
    const current = chains[chains.length - 1];
    const head = current?.[0];
    if (head && head.aggregate_type === row.aggregate_type && head.aggregate_id === row.aggregate_id) current.push(row);
    else chains.push([row]);
  }
  return chains;
}

function firstProblem(chain: ChainRow[]): AuditProblem | undefined {
  const head = chain[0]!;
  const base = { aggregateType: head.aggregate_type, aggregateId: head.aggregate_id };
  const events = chain.filter((row) => row.sequence !== null);
  for (const row of events) {
    const at = { ...base, sequence: Number(row.sequence), globalPosition: Number(row.global_position) };
    if (row.sequence !== row.position_in_chain) {
      return {
        ...at,
        kind: 'sequence',
        message: `sequence ${row.sequence} is event number ${row.position_in_chain} of the chain: events before it are missing`,
      };
    }
    if (!row.hash_ok) {
      return {
        ...at,
        kind: 'hash',
        message: `event ${row.sequence} (global position ${row.global_position}) does not match its hash: it, or the event before it, was changed or removed`,
      };
    }
  }
  const last = events[events.length - 1];
  if (!last || last.sequence !== head.head_version || last.hash !== head.head_hash) {
    return {
      ...base,
      kind: 'head',
      sequence: last ? Number(last.sequence) : null,
      globalPosition: last ? Number(last.global_position) : null,
      message: last
        ? `the head records version ${head.head_version}, but the last event is ${last.sequence}${last.sequence === head.head_version ? ' with a different hash' : ''}: the latest events were changed or removed`
        : `the head records version ${head.head_version}, but the aggregate has no events: they were removed`,
    };
  }
  return undefined;
}

/** Events whose aggregate has no head row: the head was removed, or the events were inserted around the append. */
async function eventsWithoutHead(sql: Sql, tables: StoreTables, options: AuditOptions, limit: number): Promise<AuditProblem[]> {
  const rows = await sql.query<{ aggregate_type: string; aggregate_id: string; sequence: string; global_position: string }>(
    `SELECT DISTINCT ON (e.aggregate_type, e.aggregate_id)
            e.aggregate_type, e.aggregate_id, e.sequence::text AS sequence, e.global_position::text AS global_position
     FROM ${tables.events} e
     WHERE ($1::text IS NULL OR e.aggregate_type = $1::text) AND ($2::text IS NULL OR e.aggregate_id = $2::text)
       AND NOT EXISTS (SELECT 1 FROM ${tables.heads} h WHERE h.aggregate_type = e.aggregate_type AND h.aggregate_id = e.aggregate_id)
     ORDER BY e.aggregate_type, e.aggregate_id, e.sequence
     LIMIT $3::int`,
    [options.aggregateType ?? null, options.aggregateId ?? null, limit],
  );
  return rows.map((row) => ({
    kind: 'missing-head' as const,
    aggregateType: row.aggregate_type,
    aggregateId: row.aggregate_id,
    sequence: Number(row.sequence),
    globalPosition: Number(row.global_position),
    message: `events exist but the aggregate has no head row: it was removed, or events were written around the append`,
  }));
}
