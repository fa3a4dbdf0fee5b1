/** Table, column and function names of the event store, kept in one place. */
export interface StoreTables {
  schema: string;
  events: string;
  heads: string;
  eventHash: string;
  snapshots: string;
  checkpoints: string;
  leases: string;
  tombstones: string;
  replicationState: string;
  baselines: string;
  stagedEvents: string;
  verifyRuns: string;
  verifyMismatches: string;
  cutover: string;
  cutoverLog: string;
  scheduleState: string;
  scheduleLog: string;
  verifyChunkRuns: string;
  verifyChunks: string;
}

export function storeTables(quotedSchema: string): StoreTables {
  return {
    schema: quotedSchema,
    events: `${quotedSchema}.events`,
    heads: `${quotedSchema}.heads`,
    eventHash: `${quotedSchema}.event_hash`,
    snapshots: `${quotedSchema}.snapshots`,
    checkpoints: `${quotedSchema}.checkpoints`,
    leases: `${quotedSchema}.leases`,
    tombstones: `${quotedSchema}.read_model_tombstones`,
    replicationState: `${quotedSchema}.replication_state`,
    baselines: `${quotedSchema}.baselines`,
    stagedEvents: `${quotedSchema}.staged_events`,
    verifyRuns: `${quotedSchema}.verify_runs`,
    verifyMismatches: `${quotedSchema}.verify_mismatches`,
    cutover: `${quotedSchema}.cutover`,
    cutoverLog: `${quotedSchema}.cutover_log`,
    scheduleState: `${quotedSchema}.schedule_state`,
    scheduleLog: `${quotedSchema}.schedule_log`,
    verifyChunkRuns: `${quotedSchema}.verify_chunk_runs`,
    verifyChunks: `${quotedSchema}.verify_chunks`,
  };
}

/**
 * The empty hash an aggregate's first event chains from. Not the literal '\\x': with
 * standard_conforming_strings off a session would read that as the byte "x".
 */
export const GENESIS_HASH = `decode('', 'hex')`;
