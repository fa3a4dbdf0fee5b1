import type pg from 'pg';

/**
 * COPY on a node-postgres client without collecting rows in memory. node-postgres runs
 * any object with `submit` as a query and hands it the protocol messages; these are
 * those objects. Note on errors: when the server reports one, node-postgres forgets the
 * query before the ReadyForQuery that follows, so a query settles on the error message
 * itself; statements sent afterwards wait for ReadyForQuery in the client's own queue.
 */

/** Runs `COPY (...) TO STDOUT` and hands each CopyData message (one row, in text format) to `onRow`. Returns the row count. */
export async function copyOut(client: pg.ClientBase, copyStatement: string, onRow: (chunk: Buffer) => void): Promise<number> {
  const query = new CopyOutQuery(copyStatement, onRow);
  void client.query(query as never);
  await query.done;
  return query.rows;
}

/** Runs `COPY ... FROM STDIN` and sends `data` (rows in text format, in as many buffers as convenient). */
export async function copyIn(client: pg.ClientBase, copyStatement: string, data: readonly Buffer[]): Promise<void> {
  const query = new CopyInQuery(copyStatement, data);
  void client.query(query as never);
  await query.done;
}

interface Connection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

abstract class Submittable {
  readonly done: Promise<void>;
  protected failure: unknown;
  private resolve!: () => void;
  private reject!: (error: unknown) => void;

  constructor(readonly text: string) {
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  submit(connection: Connection): void {
    connection.query(this.text);
  }

  handleCommandComplete(): void {}

  handleError(error: unknown): void {
    this.reject(error); // the last message this query gets (see above)
  }

  handleReadyForQuery(): void {
    if (this.failure) this.reject(this.failure);
    else this.resolve();
  }
}

class CopyOutQuery extends Submittable {
  rows = 0;

  constructor(
    text: string,
    private readonly onRow: (chunk: Buffer) => void,
  ) {
    super(text);
  }

  /** A throwing `onRow` stops the calls; the COPY runs to its end so the connection stays usable, then the query rejects. */
  handleCopyData(message: { chunk: Buffer }): void {
    if (this.failure) return;
    try {
      this.onRow(message.chunk);
      this.rows += 1;
    } catch (error) {
      this.failure = error;
    }
  }
}

class CopyInQuery extends Submittable {
  constructor(
    text: string,
    private readonly data: readonly Buffer[],
  ) {
    super(text);
  }

  handleCopyInResponse(connection: Connection): void {
    for (const chunk of this.data) connection.sendCopyFromChunk(chunk);
    connection.endCopyFrom();
  }
}
