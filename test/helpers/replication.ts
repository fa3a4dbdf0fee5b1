import type pg from 'pg';
import type { ResolvedConfig } from '../../src/config/resolve.js';
import { toSql } from '../../src/db/queryable.js';
import { teardownReplication } from '../../src/replication/setup.js';

/**
 * Drops a test's slot and publication. A listener that just stopped may hold the slot for
 * a moment longer (its walsender exits after the client), and a database with a slot
 * cannot be dropped: retry for a few seconds. Staged events left by a failed test go with it.
 */
export async function teardownEventually(pool: pg.Pool, config: ResolvedConfig): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await teardownReplication(toSql(pool), config, { force: true });
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await teardownReplication(toSql(pool), config, { force: true });
}
