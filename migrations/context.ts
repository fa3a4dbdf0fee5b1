/** What a migration gets: the quoted schema and a way to run one SQL statement. */
export interface MigrationContext {
  /** hindsight's schema, quoted for interpolation. */
  schema: string;
  run(sql: string): Promise<void>;
}
