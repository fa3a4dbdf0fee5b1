import type { AggregateType, ComparisonRule } from '../config/resolve.js';
import { quoteIdent } from '../db/identifiers.js';
import type { Sql } from '../db/queryable.js';

/** A legacy column the verifier compares, with what the catalog says of its type. */
export interface ComparedColumn extends ComparisonRule {
  quoted: string;
  /** format_type(): `numeric(12,2)`, `timestamp with time zone`, `jsonb`, a user type's qualified name. */
  sqlType: string;
  /**
   * The type without its modifier, schema-qualified (`pg_catalog.bpchar`), which values are
   * cast to: an explicit cast to char(2), bit(n) or timestamp(0) would silently cut or round
   * the projected value into a match (and `character` alone means char(1)).
   */
  castType: string;
  /** pg_type.typname: `bpchar`, `timestamptz`, `jsonb`, `_int4`... */
  typeName: string;
  /** pg_type.typcategory: N numeric, D date/time, B boolean, S string, E enum, A array, U other. */
  category: string;
  /** Whether the type has an `=` of its own (point and xml, say, do not: they are compared as text). */
  hasEquality: boolean;
}

export type ColumnsResult = { columns: ComparedColumn[] } | { problem: string };

/**
 * The columns of a type's legacy table the verifier compares: those of its column map,
 * or, without one, every column but the key (under its own name). A mapped column the
 * table does not have is a problem that makes the type's run incomplete.
 */
export async function comparedColumns(sql: Sql, aggregate: AggregateType): Promise<ColumnsResult> {
  const byName = await columnTypes(sql, aggregate.table.quoted);
  if (byName.size === 0) return { problem: `the legacy table ${aggregate.tableLabel} does not exist or cannot be read` };
  const keys = new Set(aggregate.key.map((k) => k.column));
  const rules: ComparisonRule[] =
    aggregate.comparisons.size > 0
      ? [...aggregate.comparisons.values()]
      : [...byName.keys()].filter((name) => !keys.has(name)).map((name) => ({ column: name, field: name, compare: 'exact', nullEqualsMissing: false }));
  const missing = rules.filter((rule) => !byName.has(rule.column)).map((rule) => rule.column);
  if (missing.length > 0) {
    return { problem: `the legacy table ${aggregate.tableLabel} has no column ${missing.join(', ')} (named in the column map)` };
  }
  const [key] = await sql.query<{ unique_key: boolean; not_null: boolean | null }>(
    `SELECT EXISTS (
              SELECT 1 FROM pg_index i
              WHERE i.indrelid = to_regclass($1::text) AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
                AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey))
                    = (SELECT array_agg(x ORDER BY x) FROM unnest($2::text[]) x)) AS unique_key,
            (SELECT bool_and(a.attnotnull) FROM pg_attribute a WHERE a.attrelid = to_regclass($1::text) AND a.attname = ANY ($2::text[])) AS not_null`,
    [aggregate.table.quoted, aggregate.key.map((k) => k.column)],
  );
  // Pages follow the key: without a unique, NOT NULL key they could skip or repeat rows.
  const keyNames = aggregate.key.map((k) => k.column).join(', ');
  if (!key!.unique_key) return { problem: `the key (${keyNames}) of ${aggregate.tableLabel} has no primary key or unique index of exactly those columns, so rows cannot be paged without skipping any` };
  if (!key!.not_null) return { problem: `the key (${keyNames}) of ${aggregate.tableLabel} allows NULL, so rows cannot be paged without skipping any` };
  if (aggregate.verify.updatedAt && !byName.has(aggregate.verify.updatedAt)) {
    return { problem: `the legacy table ${aggregate.tableLabel} has no column ${aggregate.verify.updatedAt} (verify.updatedAt)` };
  }
  return {
    columns: rules.map((rule) => ({ ...rule, quoted: quoteIdent(rule.column), ...byName.get(rule.column)! })),
  };
}

/** What the verifier needs to know of a column's type. */
export type ColumnType = Pick<ComparedColumn, 'sqlType' | 'castType' | 'typeName' | 'category' | 'hasEquality'>;

/** The columns of a table (legacy or read model) and their types, in column order; empty when it does not exist. */
export async function columnTypes(sql: Sql, quotedTable: string): Promise<Map<string, ColumnType>> {
  const rows = await sql.query<{ name: string; sql_type: string; base_type: string; type_name: string; category: string; has_equality: boolean }>(
    `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS sql_type, format('%I.%I', tn.nspname, t.typname) AS base_type,
            t.typname::text AS type_name, t.typcategory AS category,
            EXISTS (SELECT 1 FROM pg_operator o WHERE o.oprname = '=' AND o.oprleft = a.atttypid AND o.oprright = a.atttypid) AS has_equality
     FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
     WHERE a.attrelid = to_regclass($1::text) AND a.attnum > 0 AND NOT a.attisdropped
     ORDER BY a.attnum`,
    [quotedTable],
  );
  return new Map(
    rows.map((r) => [r.name, { sqlType: r.sql_type, castType: r.base_type, typeName: r.type_name, category: r.category, hasEquality: r.has_equality }]),
  );
}
