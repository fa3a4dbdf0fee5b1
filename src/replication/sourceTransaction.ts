import { CONTEXT_PREFIX } from '../capture/recordContext.js';
import type { Relation } from './pgoutput.js';

/** What the listener holds of a source transaction between its BEGIN and its group's write. */

/** One source transaction, as received. */
export interface SourceTransaction {
  xid: number;
  commitLsn: bigint;
  endLsn: bigint;
  commitTime: bigint;
  /** Row changes (raw I/U/D messages) and truncations, in WAL order, each with its relation as it was then. */
  changes: Array<{ raw: Buffer; relation: Relation } | { truncate: true; relation: Relation } | { staged: Buffer; relation: Relation }>;
  /** Context messages (metadata JSON) and the index of the first change each applies to. */
  contexts: Array<{ from: number; metadata: string }>;
  /** Holds a `hindsight.cut` marker or a heartbeat: its commit is checkpointed at once, even with no events. */
  checkpointNow: boolean;
}

/** A context message's metadata; anyone can emit one, so a malformed one is noted, never fatal. */
export function contextMetadata(content: Buffer): string {
  const text = content.toString('utf8');
  try {
    const parsed: unknown = JSON.parse(text);
    // Kept as sent (re-serialising would round big numbers); jsonb refuses \u0000.
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) && !text.includes('\\u0000')) return text;
  } catch {
    // falls through
  }
  return JSON.stringify({ context_error: `a ${CONTEXT_PREFIX} message that is not a JSON object was ignored` });
}

/**
 * The context of a row change: the latest context message before it in its transaction;
 * for changes before the first message, the first one's; none, an empty object.
 */
export function contextAt(transaction: SourceTransaction, index: number): string {
  let found = transaction.contexts[0]?.metadata ?? '{}';
  for (const context of transaction.contexts) {
    if (context.from > index) break;
    found = context.metadata;
  }
  return found;
}

