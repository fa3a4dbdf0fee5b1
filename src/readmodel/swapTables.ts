import type { Sql } from '../db/queryable.js';
import { quoteIdent, type TableName } from '../db/identifiers.js';
import { ConfigError } from '../errors.js';
import type { StoreTables } from '../store/tables.js';
import type { ReadModel } from './declaration.js';
import { shadowName } from './ensureTable.js';

interface DependentView {
  schema: string;
  name: string;
  kind: string;
  definition: string;
  owner: string;
  acl: string | null;
  /** security_invoker, security_barrier, check_option... */
  options: string[] | null;
  triggers: number;
}

/**
 * Inside the rebuild's swap transaction: puts the shadow table in the live table's place.
 * Views that depend on the live table (directly or through other views) are dropped and
 * recreated on the new table with their owners and grants; the live table's grants and
 * owner move to the new one; index and constraint names lose the shadow suffix.
 */
export async function swapTables(sql: Sql, tables: StoreTables, model: ReadModel, shadow: TableName): Promise<void> {
  const live = model.table;
  const [found] = await sql.query<{ oid: string | null; owner: string | null }>(
    `SELECT c.oid::text AS oid, pg_get_userbyid(c.relowner) AS owner FROM pg_class c WHERE c.oid = to_regclass($1::text)`,
    [live.quoted],
  );
  const views: DependentView[] = [];
  if (found?.oid) {
    await refuseWhatCannotBeCarried(sql, model, live, found.oid);
    views.push(...(await dependentViews(sql, found.oid)));
    const materialized = views.find((v) => v.kind !== 'v');
    if (materialized) {
      throw new ConfigError(
        `read model ${model.name}: the materialized view ${materialized.schema}.${materialized.name} depends on ${live.quoted}; ` +
          'a rebuild cannot carry it over: drop it before the rebuild and create it again after',
      );
    }
    const triggered = views.find((v) => v.triggers > 0);
    if (triggered) {
      throw new ConfigError(
        `read model ${model.name}: the view ${triggered.schema}.${triggered.name} has triggers, which a rebuild cannot carry over; drop them before the rebuild and create them again after`,
      );
    }
    // Lock from the outermost view down to the table: the order a query on a view takes the
    // same locks in, so such a query waits for the swap instead of deadlocking with it.
    const order = [...views].reverse().map((v) => `${quoteIdent(v.schema)}.${quoteIdent(v.name)}`);
    await sql.query(`LOCK TABLE ${[...order, live.quoted].join(', ')} IN ACCESS EXCLUSIVE MODE`);
    await copyGrants(sql, live, shadow);
    if (found.owner) await sql.query(`ALTER TABLE ${shadow.quoted} OWNER TO ${quoteIdent(found.owner)}`);
    for (const view of [...views].reverse()) await sql.query(`DROP VIEW ${quoteIdent(view.schema)}.${quoteIdent(view.name)}`);
    await sql.query(`DROP TABLE ${live.quoted}`);
    await sql.query(`DELETE FROM ${tables.tombstones} WHERE table_oid = $1::oid`, [found.oid]);
  }
  await sql.query(`ALTER TABLE ${shadow.quoted} RENAME TO ${quoteIdent(live.name)}`);
  await renameIndexes(sql, model, live, shadow);
  for (const view of views) {
    const name = `${quoteIdent(view.schema)}.${quoteIdent(view.name)}`;
    const options = view.options?.length ? ` WITH (${view.options.map(viewOption).join(', ')})` : '';
    await sql.query(`CREATE VIEW ${name}${options} AS ${view.definition}`);
    await sql.query(`ALTER VIEW ${name} OWNER TO ${quoteIdent(view.owner)}`);
    await applyAcl(sql, `TABLE ${name}`, view.acl);
  }
}

/**
 * Views depending on the table, directly or through other views, in dependency order: a
 * view comes after every view it reads (its depth is its longest path from the table), so
 * they are recreated in this order and dropped in the reverse one.
 */
async function dependentViews(sql: Sql, tableOid: string): Promise<DependentView[]> {
  return sql.query<DependentView>(
    `WITH RECURSIVE deps(oid, depth) AS (
       SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid
       WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = $1::oid AND r.ev_class <> $1::oid
       UNION
       SELECT r.ev_class, deps.depth + 1 FROM deps JOIN pg_depend d ON d.refobjid = deps.oid AND d.classid = 'pg_rewrite'::regclass
       JOIN pg_rewrite r ON r.oid = d.objid WHERE r.ev_class <> deps.oid AND deps.depth < 100
     )
     SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS kind, pg_get_viewdef(c.oid) AS definition,
            pg_get_userbyid(c.relowner) AS owner, c.relacl::text AS acl, c.reloptions AS options,
            (SELECT count(*)::int FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) AS triggers
     FROM (SELECT oid, max(depth) AS depth FROM deps GROUP BY oid) d JOIN pg_class c ON c.oid = d.oid
     JOIN pg_namespace n ON n.oid = c.relnamespace
     ORDER BY d.depth, c.oid`,
    [tableOid],
  );
}

/** `security_invoker=true` as SQL; values come from the catalog (plain words), quoted anyway. */
function viewOption(option: string): string {
  const at = option.indexOf('=');
  const name = option.slice(0, at);
  if (!/^[a-z_]+$/.test(name)) throw new Error(`internal: unexpected view option ${JSON.stringify(option)}`);
  return `${name} = '${option.slice(at + 1).replace(/'/g, "''")}'`;
}

/**
 * What a dropped table takes with it and the swap does not recreate: row-level security,
 * triggers, column grants, publication membership. Refused, rather than silently lost (a
 * lost row-level security policy would expose rows).
 */
async function refuseWhatCannotBeCarried(sql: Sql, model: ReadModel, live: TableName, oid: string): Promise<void> {
  const [row] = await sql.query<{ rls: boolean; policies: number; triggers: number; column_grants: number; publications: number }>(
    `SELECT c.relrowsecurity OR c.relforcerowsecurity AS rls,
            (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
            (SELECT count(*)::int FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) AS triggers,
            (SELECT count(*)::int FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL) AS column_grants,
            (SELECT count(*)::int FROM pg_publication_rel r WHERE r.prrelid = c.oid) AS publications
     FROM pg_class c WHERE c.oid = $1::oid`,
    [oid],
  );
  const found = [
    row?.rls || row?.policies ? 'row-level security' : '',
    row?.triggers ? 'triggers' : '',
    row?.column_grants ? 'column grants' : '',
    row?.publications ? 'a publication' : '',
  ].filter(Boolean);
  if (found.length > 0) {
    throw new ConfigError(
      `read model ${model.name}: ${live.quoted} has ${found.join(', ')}, which a rebuild's table swap cannot carry over; ` +
        'remove them before the rebuild and add them again after',
    );
  }
}

async function copyGrants(sql: Sql, from: TableName, to: TableName): Promise<void> {
  const [row] = await sql.query<{ acl: string | null }>(`SELECT relacl::text AS acl FROM pg_class WHERE oid = to_regclass($1::text)`, [from.quoted]);
  await applyAcl(sql, `TABLE ${to.quoted}`, row?.acl ?? null);
}

/** Re-grants an object's privileges from an ACL, as aclexplode lists them. */
async function applyAcl(sql: Sql, target: string, acl: string | null): Promise<void> {
  if (!acl) return;
  const grants = await sql.query<{ grantee: string | null; privilege: string; grantable: boolean }>(
    `SELECT CASE WHEN a.grantee = 0 THEN NULL ELSE pg_get_userbyid(a.grantee) END AS grantee, a.privilege_type AS privilege, a.is_grantable AS grantable
     FROM aclexplode($1::aclitem[]) a`,
    [acl],
  );
  for (const grant of grants) {
    const to = grant.grantee === null ? 'PUBLIC' : quoteIdent(grant.grantee);
    await sql.query(`GRANT ${grant.privilege} ON ${target} TO ${to}${grant.grantable ? ' WITH GRANT OPTION' : ''}`);
  }
}

/** The shadow's constraint and index names (made from the shadow's name) back to the live ones. */
async function renameIndexes(sql: Sql, model: ReadModel, live: TableName, shadow: TableName): Promise<void> {
  const declared = new Map(model.indexes.map((index) => [shadowName(index.name), index.name]));
  const indexes = await sql.query<{ name: string; constraint_name: string | null }>(
    `SELECT i.relname AS name, con.conname AS constraint_name
     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
     LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid
     WHERE x.indrelid = to_regclass($1::text)`,
    [live.quoted],
  );
  for (const index of indexes) {
    const renamed = declared.get(index.name) ?? (index.name.startsWith(shadow.name) ? `${live.name}${index.name.slice(shadow.name.length)}` : index.name);
    if (renamed === index.name) continue;
    if (index.constraint_name) {
      await sql.query(`ALTER TABLE ${live.quoted} RENAME CONSTRAINT ${quoteIdent(index.constraint_name)} TO ${quoteIdent(renamed)}`);
    } else {
      const schema = live.schema ? `${quoteIdent(live.schema)}.` : '';
      await sql.query(`ALTER INDEX ${schema}${quoteIdent(index.name)} RENAME TO ${quoteIdent(renamed)}`);
    }
  }
}
