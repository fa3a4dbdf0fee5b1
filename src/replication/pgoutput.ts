/**
 * A decoder of pgoutput's logical replication protocol (version 1, with `messages` on),
 * written here rather than taken from pg-logical-replication's parser because that one
 * converts values with pg's global type parsers (timestamps lose microseconds, bigints in
 * jsonb lose digits) and those belong to the host application. Values stay as PostgreSQL's
 * text output; the mapping step decides what they become.
 * Protocol: https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 */

/** A column value as sent: its text form, SQL NULL, or "unchanged" (a TOASTed value the update did not touch). */
export type TupleValue = string | null | typeof UNCHANGED;
export const UNCHANGED = Symbol('unchanged TOAST value');

export interface RelationColumn {
  name: string;
  isKey: boolean;
  typeOid: number;
}

export interface Relation {
  oid: number;
  schema: string;
  name: string;
  /** d default, n nothing, f full, i index. */
  replicaIdentity: string;
  columns: RelationColumn[];
}

export type PgoutputMessage =
  | { tag: 'begin'; finalLsn: bigint; commitTime: bigint; xid: number }
  | { tag: 'commit'; commitLsn: bigint; endLsn: bigint; commitTime: bigint }
  | { tag: 'relation'; relation: Relation }
  | { tag: 'insert'; relationOid: number; after: TupleValue[] }
  | { tag: 'update'; relationOid: number; before: TupleValue[] | undefined; beforeIsKeyOnly: boolean; after: TupleValue[] }
  | { tag: 'delete'; relationOid: number; before: TupleValue[]; beforeIsKeyOnly: boolean }
  | { tag: 'truncate'; relationOids: number[] }
  | { tag: 'message'; transactional: boolean; lsn: bigint; prefix: string; content: Buffer }
  | { tag: 'other'; code: string };

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
export const POSTGRES_EPOCH_MICROS = 946_684_800_000_000n;

class Reader {
  offset = 0;
  constructor(private readonly buffer: Buffer) {}
  byte(): number {
    return this.buffer[this.offset++]!;
  }
  int16(): number {
    const value = this.buffer.readInt16BE(this.offset);
    this.offset += 2;
    return value;
  }
  int32(): number {
    const value = this.buffer.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  uint32(): number {
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  int64(): bigint {
    const value = this.buffer.readBigInt64BE(this.offset);
    this.offset += 8;
    return value;
  }
  string(): string {
    const end = this.buffer.indexOf(0, this.offset);
    const value = this.buffer.toString('utf8', this.offset, end);
    this.offset = end + 1;
    return value;
  }
  bytes(length: number): Buffer {
    const value = this.buffer.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }
  tuple(): TupleValue[] {
    const count = this.int16();
    const values: TupleValue[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const kind = this.byte();
      if (kind === 0x6e /* n */) values[i] = null;
      else if (kind === 0x75 /* u */) values[i] = UNCHANGED;
      else if (kind === 0x74 /* t */) values[i] = this.bytes(this.int32()).toString('utf8');
      else throw new Error(`pgoutput sent a column in format "${String.fromCharCode(kind)}"; hindsight asks for text only`);
    }
    return values;
  }
}

/** Decodes one pgoutput message (the payload of an XLogData message). */
export function decodePgoutput(buffer: Buffer): PgoutputMessage {
  const reader = new Reader(buffer);
  const code = String.fromCharCode(reader.byte());
  switch (code) {
    case 'B':
      return { tag: 'begin', finalLsn: reader.int64(), commitTime: reader.int64(), xid: reader.uint32() };
    case 'C': {
      reader.byte(); // flags, unused
      return { tag: 'commit', commitLsn: reader.int64(), endLsn: reader.int64(), commitTime: reader.int64() };
    }
    case 'R': {
      const oid = reader.uint32();
      const schema = reader.string();
      const name = reader.string();
      const replicaIdentity = String.fromCharCode(reader.byte());
      const count = reader.int16();
      const columns: RelationColumn[] = [];
      for (let i = 0; i < count; i++) {
        const flags = reader.byte();
        const column = reader.string();
        const typeOid = reader.uint32();
        reader.int32(); // typmod
        columns.push({ name: column, isKey: (flags & 1) === 1, typeOid });
      }
      return { tag: 'relation', relation: { oid, schema, name, replicaIdentity, columns } };
    }
    case 'I': {
      const relationOid = reader.uint32();
      reader.byte(); // 'N'
      return { tag: 'insert', relationOid, after: reader.tuple() };
    }
    case 'U': {
      const relationOid = reader.uint32();
      let kind = String.fromCharCode(reader.byte());
      let before: TupleValue[] | undefined;
      const beforeIsKeyOnly = kind === 'K';
      if (kind === 'K' || kind === 'O') {
        before = reader.tuple();
        kind = String.fromCharCode(reader.byte()); // 'N'
      }
      return { tag: 'update', relationOid, before, beforeIsKeyOnly, after: reader.tuple() };
    }
    case 'D': {
      const relationOid = reader.uint32();
      const kind = String.fromCharCode(reader.byte());
      return { tag: 'delete', relationOid, beforeIsKeyOnly: kind === 'K', before: reader.tuple() };
    }
    case 'T': {
      const count = reader.int32();
      reader.byte(); // options: cascade, restart identity
      const relationOids: number[] = [];
      for (let i = 0; i < count; i++) relationOids.push(reader.uint32());
      return { tag: 'truncate', relationOids };
    }
    case 'M': {
      const transactional = (reader.byte() & 1) === 1;
      const lsn = reader.int64();
      const prefix = reader.string();
      const content = reader.bytes(reader.int32());
      return { tag: 'message', transactional, lsn, prefix, content: Buffer.from(content) };
    }
    default:
      return { tag: 'other', code }; // origin (O) and type (Y) messages carry nothing hindsight uses
  }
}

/** An LSN as PostgreSQL prints it (`16/B374D848`), from its 64-bit value. */
export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** An LSN's 64-bit value from its text form, padded or not (never compare LSNs as strings). */
export function parseLsn(text: string): bigint {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!match) throw new Error(`"${text}" is not an LSN`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** A pgoutput timestamp (microseconds since 2000-01-01 UTC) as ISO-8601 with all six digits. */
export function pgTimestampToIso(micros: bigint): string {
  const unixMicros = micros + POSTGRES_EPOCH_MICROS;
  const millis = unixMicros / 1000n;
  const rest = Number(unixMicros % 1000n);
  const iso = new Date(Number(millis)).toISOString(); // ...sss Z
  return `${iso.slice(0, -1)}${String(rest).padStart(3, '0')}Z`;
}
