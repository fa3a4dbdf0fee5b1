import type pg from 'pg';
import { decodePgoutput } from './pgoutput.js';

/**
 * The plugin object pg-logical-replication drives: START_REPLICATION with pgoutput in
 * text mode, and our own decoder. Row changes stay raw until their group is written.
 */
export class TextPgoutput {
  readonly name = 'pgoutput';
  constructor(
    private readonly publication: string,
    /** Called as each message arrives (before it waits in the package's queue). */
    private readonly onArrival: () => void,
  ) {}

  start(client: pg.Client, slotName: string, lastLsn: string): Promise<unknown> {
    // Names are plain identifiers (checked in the config): the command takes no parameters.
    return client.query(
      `START_REPLICATION SLOT "${slotName}" LOGICAL ${lastLsn} (proto_version '1', publication_names '${this.publication}', messages 'true')`,
    );
  }

  parse(buffer: Buffer): unknown {
    this.onArrival();
    const code = buffer[0];
    if (code === 0x49 /* I */ || code === 0x55 /* U */ || code === 0x44 /* D */) {
      return { tag: 'raw', raw: Buffer.from(buffer), relationOid: buffer.readUInt32BE(1), code: String.fromCharCode(code) };
    }
    return decodePgoutput(buffer);
  }
}

