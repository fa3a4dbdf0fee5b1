/**
 * Bind values collected while a statement is built from parts (a batch's upsert, its
 * tombstones, its snapshots, each usable alone or in one statement together): `add`
 * returns the next placeholder, cast to the given type.
 */
export class Params {
  readonly values: unknown[] = [];

  add(value: unknown, type: string): string {
    this.values.push(value);
    return `$${this.values.length}::${type}`;
  }
}
