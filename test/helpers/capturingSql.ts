import type pg from 'pg';
import type { Sql } from '../../src/db/queryable.js';

/** An Sql that runs the library's real queries on `pool`, keeping their SQL and values to EXPLAIN them. */
export function capturingSql(pool: pg.Pool): { sql: Sql; captured: Array<{ text: string; values: readonly unknown[] }> } {
  const captured: Array<{ text: string; values: readonly unknown[] }> = [];
  return {
    captured,
    sql: {
      rawText: false,
      async query(text, values = []) {
        captured.push({ text, values });
        return (await pool.query(text, [...values])).rows;
      },
      async rows(text, values = []) {
        captured.push({ text, values });
        return (await pool.query({ text, values: [...values], rowMode: 'array' })).rows;
      },
    },
  };
}

export type PlanNode = Record<string, unknown>;

/** Every node of `EXPLAIN (FORMAT JSON)` of a statement, in tree order; with `analyze`, it runs (SELECTs only). */
export async function planNodes(client: pg.Pool | pg.PoolClient, text: string, values: readonly unknown[], options: { analyze?: boolean } = {}): Promise<PlanNode[]> {
  const { rows } = await client.query(`EXPLAIN (${options.analyze ? 'ANALYZE, ' : ''}FORMAT JSON) ${text}`, [...values]);
  const nodes: PlanNode[] = [];
  const walk = (node: PlanNode) => {
    nodes.push(node);
    for (const child of (node.Plans as PlanNode[] | undefined) ?? []) walk(child);
  };
  walk((rows[0]['QUERY PLAN'] as Array<{ Plan: PlanNode }>)[0]!.Plan);
  return nodes;
}
