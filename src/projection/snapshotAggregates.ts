import type { AggregateType } from '../config/resolve.js';
import { byCanonicalId, type AggregateRef } from '../db/canonicalKey.js';
import type { Sql } from '../db/queryable.js';
import type { StoreTables } from '../store/tables.js';
import { project } from './project.js';
import { writeSnapshots } from './snapshots.js';

export interface SnapshotProgress {
  aggregates: number;
  written: number;
}

/**
 * Writes a snapshot of each aggregate of a type at its current version (or of one
 * aggregate), starting each fold from the latest snapshot already there. Aggregates
 * whose latest snapshot is already current are skipped.
 */
export async function snapshotAggregates(
  sql: Sql,
  tables: StoreTables,
  aggregate: AggregateType,
  options: { only?: AggregateRef; batchSize?: number; onProgress?: (progress: SnapshotProgress) => void } = {},
): Promise<SnapshotProgress> {
  const progress: SnapshotProgress = { aggregates: 0, written: 0 };
  const batchSize = options.batchSize ?? 200;
  const take = async (ref: AggregateRef) => {
    const projection = await project(sql, tables, aggregate, ref);
    progress.aggregates += 1;
    if (!projection.found || projection.fromSnapshot === projection.version) return;
    await writeSnapshots(sql, tables, aggregate, [{ aggregateId: projection.aggregateId, folded: projection }]);
    progress.written += 1;
  };
  if (options.only) {
    await take(options.only);
    return progress;
  }
  let after = '';
  for (;;) {
    const rows = await sql.query<{ aggregate_id: string }>(
      `SELECT h.aggregate_id FROM ${tables.heads} h
       WHERE h.aggregate_type = $1::text AND h.aggregate_id > $2::text COLLATE "C"
       ORDER BY h.aggregate_id LIMIT $3::int`,
      [aggregate.type, after, batchSize],
    );
    for (const row of rows) await take(byCanonicalId(row.aggregate_id));
    options.onProgress?.(progress);
    if (rows.length < batchSize) return progress;
    after = rows[rows.length - 1]!.aggregate_id;
  }
}
