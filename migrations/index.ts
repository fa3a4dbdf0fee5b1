import type { MigrationContext } from './context.js';
import * as eventStore from './0001_event_store.js';
import * as projections from './0002_projections.js';
import * as replication from './0003_replication.js';
import * as verification from './0004_verification.js';
import * as schedules from './0005_schedules.js';
import * as verifyChunks from './0006_verify_chunks.js';
import * as chunkAbsentHeads from './0007_chunk_absent_heads.js';

export interface Migration {
  name: string;
  up(context: MigrationContext): Promise<void>;
  down(context: MigrationContext): Promise<void>;
}

/**
 * Every migration, in order. A fixed list in a compiled module rather than a folder knex
 * scans: knex cannot import .ts files under plain Node or inside vitest.
 */
export const migrations: ReadonlyArray<Migration> = [
  { name: '0001_event_store', ...eventStore },
  { name: '0002_projections', ...projections },
  { name: '0003_replication', ...replication },
  { name: '0004_verification', ...verification },
  { name: '0005_schedules', ...schedules },
  { name: '0006_verify_chunks', ...verifyChunks },
  { name: '0007_chunk_absent_heads', ...chunkAbsentHeads },
];
