import type { Sql } from '../db/queryable.js';
import { toJsonText } from '../events/json.js';
import { contextToMetadata, currentContext, type CaptureContext } from './context.js';

/** The logical message prefix the listener reads a transaction's context from. */
export const CONTEXT_PREFIX = 'hindsight.context';

/**
 * For listener types, whose events the listener writes from row changes: records who is
 * acting and why in the caller's transaction, as a transactional logical message (it
 * vanishes with a rollback, like the changes). The listener gives each row change the
 * context of the latest such message before it in its transaction, and changes before
 * the first message the first one's. The context in effect (withContext) is merged under
 * `context`. Writes nothing to any table and takes no lock.
 */
export async function recordContext(sql: Sql, context: CaptureContext = {}): Promise<void> {
  const metadata = contextToMetadata({ ...currentContext(), ...context });
  await sql.query(`SELECT pg_logical_emit_message(true, $1::text, $2::text)`, [CONTEXT_PREFIX, toJsonText(metadata, 'context')]);
}
