import type { MigrationContext } from './context.js';

/**
 * A chunk's share of the heads pass, found once when its run is planned: the canonical ids
 * of aggregates that had events but no legacy row then, whose keys fall in the chunk's
 * range. Before this, every chunk walked all of its type's heads to find its own (the heads
 * index is in canonical-id order, which is not the key order chunks are cut in), so a run
 * of N chunks read the heads N times (issue 12, item 4). NULL for chunks planned before.
 * FROZEN once shipped (see test/migrations/frozen.unit.test.ts).
 */
export async function up({ run, schema: s }: MigrationContext): Promise<void> {
  await run(`ALTER TABLE ${s}.verify_chunks ADD COLUMN absent_heads text[]`);
}

export async function down({ run, schema: s }: MigrationContext): Promise<void> {
  await run(`ALTER TABLE ${s}.verify_chunks DROP COLUMN IF EXISTS absent_heads`);
}
