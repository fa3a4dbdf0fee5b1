import type pg from 'pg';

/**
 * The raw read rate of a query's rows: `COPY (query) TO STDOUT`, counted as they arrive
 * and thrown away. node-postgres runs any object with `submit` as a query; this one only
 * counts the CopyData messages (one per row in text format).
 */
class CopyCounter {
  rows = 0;
  bytes = 0;
  readonly done: Promise<void>;
  private resolve!: () => void;
  private reject!: (error: unknown) => void;
  private failure: unknown;

  constructor(readonly text: string) {
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  submit(connection: { query(text: string): void }): void {
    connection.query(this.text);
  }

  handleCopyData(message: { chunk: Buffer }): void {
    this.rows += 1;
    this.bytes += message.chunk.length;
  }

  handleCommandComplete(): void {}

  handleError(error: unknown): void {
    this.failure = error;
  }

  handleReadyForQuery(): void {
    if (this.failure) this.reject(this.failure);
    else this.resolve();
  }
}

export async function copyRate(client: pg.ClientBase, query: string): Promise<{ rows: number; bytes: number; seconds: number }> {
  const counter = new CopyCounter(`COPY (${query}) TO STDOUT`);
  const started = performance.now();
  void client.query(counter as never);
  await counter.done;
  return { rows: counter.rows, bytes: counter.bytes, seconds: (performance.now() - started) / 1000 };
}
