import type pg from 'pg';
import { TenantDbError } from '../errors.js';
import { quoteIdent } from '../util/sql.js';

/**
 * A tenant database's schema as read from its catalogs, in the SQL that rebuilds it elsewhere: what a move
 * builds on the target before the rows (or the subscription) arrive. The source is the truth, so tables,
 * indexes, constraints and sequences the app made itself with `ctx.query` come along with the migrations'.
 * @internal
 */
export interface TenantSchema {
  /** Schemas, extensions, sequences, tables with their columns and defaults, their keys, checks and indexes. */
  preData: string[];
  /** Foreign keys and sequence ownership: after the rows, so that rows go in any order. */
  postData: string[];
  /** Every table, qualified and quoted, with the columns an INSERT takes (not generated ones). */
  tables: SchemaTable[];
  /** Every sequence: its name on the source, and how to name it on the target. */
  sequences: SchemaSequence[];
  /** Tables without a replica identity: logical replication cannot carry their updates and deletes. */
  withoutReplicaIdentity: string[];
  /**
   * Objects `preData`/`postData` do not rebuild (views, functions, triggers, the tenant's own types,
   * partitioned, inherited or foreign tables, rules, policies): only pg_dump's schema copies them.
   */
  unsupported: string[];
}

/** A table of {@link TenantSchema}. @internal */
export interface SchemaTable {
  /** `"schema"."name"`. */
  name: string;
  /** Quoted names of the columns an INSERT takes. */
  columns: string[];
  /** An identity column GENERATED ALWAYS: inserts need OVERRIDING SYSTEM VALUE. */
  identityAlways: boolean;
}

/** A sequence of {@link TenantSchema}: `"schema"."name"` on the source, and the expression naming it on the target. @internal */
export interface SchemaSequence {
  source: string;
  /** A SQL expression of type regclass (an identity sequence's name is the target's own). */
  target: string;
}

// Schemas that are PostgreSQL's own, not the tenant's.
const USER_SCHEMA = `n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'`;
// An object that belongs to an extension comes with the extension.
const notInExtension = (catalog: string, oid: string): string =>
  `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '${catalog}'::regclass AND e.objid = ${oid} AND e.deptype = 'e')`;

// A move's own objects (its fence table, that table's key and index).
const NOT_MOVE_OBJECT = (name: string): string => `NOT starts_with(${name}, 'tenantdb_move_')`;

/** SQL literal of a catalog number (bigint as text, or a number), checked to be an integer. */
function integer(value: string | number): string {
  const text = String(value);
  if (!/^-?\d+$/.test(text)) throw new TenantDbError('DATABASE', `unexpected sequence setting ${JSON.stringify(text)}`);
  return text;
}

/** `INCREMENT … CYCLE` of a pg_sequence row (an identity's sequence takes its column's type). */
function sequenceOptions(s: SequenceRow): string {
  return (
    `INCREMENT BY ${integer(s.seqincrement)} MINVALUE ${integer(s.seqmin)} MAXVALUE ${integer(s.seqmax)} ` +
    `START WITH ${integer(s.seqstart)} CACHE ${integer(s.seqcache)} ${s.seqcycle ? 'CYCLE' : 'NO CYCLE'}`
  );
}

interface SequenceRow {
  oid: number;
  name: string;
  type: string;
  seqincrement: string;
  seqmin: string;
  seqmax: string;
  seqstart: string;
  seqcache: string;
  seqcycle: boolean;
  /** The identity column owning it (`"schema"."table"` and the quoted column), if any. */
  identity_table: string | null;
  identity_column: string | null;
  /** The column owning it (a serial's), if any. */
  owner: string | null;
}

/**
 * Reads the schema of the database `client` is connected to, with the objects it cannot rebuild (see
 * {@link TenantSchema.unsupported}): a move without pg_dump refuses those, since it must give an exact copy or none.
 * @internal
 */
export async function readSchema(client: pg.ClientBase): Promise<TenantSchema> {
  // Every name the catalog functions print comes out qualified: the DDL means the same on any session.
  await client.query(`SELECT set_config('search_path', '', false)`);
  const { rows: unsupported } = await client.query<{ what: string }>(
    `SELECT format('%s %I.%I', CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'p' THEN 'partitioned table'
                                 WHEN 'f' THEN 'foreign table' END, n.nspname, c.relname) AS what
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${USER_SCHEMA} AND c.relkind IN ('v', 'm', 'p', 'f') AND ${notInExtension('pg_class', 'c.oid')}
     UNION ALL
     SELECT format('function %I.%I', n.nspname, p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE ${USER_SCHEMA} AND ${notInExtension('pg_proc', 'p.oid')}
     UNION ALL
     SELECT format('type %I.%I', n.nspname, t.typname) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE ${USER_SCHEMA} AND t.typtype IN ('e', 'd', 'r', 'm') AND ${notInExtension('pg_type', 't.oid')}
     UNION ALL
     SELECT format('trigger %I on %s', t.tgname, t.tgrelid::regclass) FROM pg_trigger t WHERE NOT t.tgisinternal
     UNION ALL
     SELECT format('inherited table %s', i.inhrelid::regclass) FROM pg_inherits i
     UNION ALL
     SELECT format('rule %I on %s', r.rulename, r.ev_class::regclass) FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE ${USER_SCHEMA} AND c.relkind = 'r'
     UNION ALL
     SELECT format('policy %I on %s', p.polname, p.polrelid::regclass) FROM pg_policy p`,
  );

  const preData: string[] = [];
  const postData: string[] = [];
  const { rows: schemas } = await client.query<{ name: string }>(
    `SELECT quote_ident(n.nspname) AS name FROM pg_namespace n
      WHERE ${USER_SCHEMA} AND n.nspname <> 'public' AND ${notInExtension('pg_namespace', 'n.oid')} ORDER BY 1`,
  );
  for (const s of schemas) preData.push(`CREATE SCHEMA IF NOT EXISTS ${s.name}`);
  const { rows: extensions } = await client.query<{ name: string; schema: string }>(
    `SELECT quote_ident(x.extname) AS name, quote_ident(n.nspname) AS schema FROM pg_extension x
       JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.extname <> 'plpgsql' ORDER BY 1`,
  );
  for (const x of extensions) preData.push(`CREATE EXTENSION IF NOT EXISTS ${x.name} WITH SCHEMA ${x.schema}`);

  const { rows: sequences } = await client.query<SequenceRow>(
    `SELECT c.oid, c.oid::regclass::text AS name, format_type(s.seqtypid, NULL) AS type, s.seqincrement::text, s.seqmin::text,
            s.seqmax::text, s.seqstart::text, s.seqcache::text, s.seqcycle,
            (SELECT d.refobjid::regclass::text FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                AND d.deptype = 'i' AND d.refobjsubid > 0) AS identity_table,
            (SELECT quote_ident(a.attname) FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'i') AS identity_column,
            (SELECT format('%s.%I', d.refobjid::regclass, a.attname) FROM pg_depend d
               JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'a' AND d.refobjsubid > 0) AS owner
       FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${USER_SCHEMA} AND ${notInExtension('pg_class', 'c.oid')} ORDER BY c.oid`,
  );
  const identityOptions = new Map<string, string>();
  const result: SchemaSequence[] = [];
  for (const s of sequences) {
    if (s.identity_table !== null && s.identity_column !== null) {
      identityOptions.set(`${s.identity_table}.${s.identity_column}`, sequenceOptions(s));
      // The target names its identity sequence itself: ask it.
      const table = client.escapeLiteral(s.identity_table);
      const column = client.escapeLiteral(s.identity_column);
      result.push({ source: s.name, target: `pg_get_serial_sequence(${table}, ${column})::regclass` });
      continue;
    }
    preData.push(`CREATE SEQUENCE ${s.name} AS ${s.type} ${sequenceOptions(s)}`);
    if (s.owner !== null) postData.push(`ALTER SEQUENCE ${s.name} OWNED BY ${s.owner}`);
    result.push({ source: s.name, target: `${client.escapeLiteral(s.name)}::regclass` });
  }

  const { rows: tables } = await client.query<{ oid: number; name: string; unlogged: boolean; replident: string; has_key: boolean }>(
    `SELECT c.oid, c.oid::regclass::text AS name, c.relpersistence = 'u' AS unlogged, c.relreplident AS replident,
            EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_key
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE ${USER_SCHEMA} AND c.relkind = 'r' AND ${notInExtension('pg_class', 'c.oid')} ORDER BY c.oid`,
  );
  const schemaTables: SchemaTable[] = [];
  const withoutReplicaIdentity: string[] = [];
  for (const t of tables) {
    const { rows: columns } = await client.query<{
      name: string;
      type: string;
      notnull: boolean;
      def: string | null;
      identity: string;
      generated: string;
      collation: string | null;
    }>(
      `SELECT quote_ident(a.attname) AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS notnull,
              pg_get_expr(d.adbin, d.adrelid) AS def, a.attidentity AS identity, a.attgenerated AS generated,
              CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation
                   THEN (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace
                          WHERE co.oid = a.attcollation) END AS collation
         FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [t.oid],
    );
    const definitions = columns.map((c) => {
      let sql = `${c.name} ${c.type}`;
      if (c.collation !== null) sql += ` COLLATE ${c.collation}`;
      if (c.generated !== '') sql += ` GENERATED ALWAYS AS (${c.def}) ${c.generated === 'v' ? 'VIRTUAL' : 'STORED'}`;
      else if (c.def !== null) sql += ` DEFAULT ${c.def}`;
      if (c.identity !== '') {
        const options = identityOptions.get(`${t.name}.${c.name}`);
        sql += ` GENERATED ${c.identity === 'a' ? 'ALWAYS' : 'BY DEFAULT'} AS IDENTITY${options ? ` (${options})` : ''}`;
      }
      if (c.notnull) sql += ' NOT NULL';
      return sql;
    });
    preData.push(`CREATE ${t.unlogged ? 'UNLOGGED ' : ''}TABLE ${t.name} (${definitions.join(', ')})`);
    schemaTables.push({
      name: t.name,
      columns: columns.filter((c) => c.generated === '').map((c) => c.name),
      identityAlways: columns.some((c) => c.identity === 'a'),
    });

    // NOT NULL constraints (PostgreSQL 18 lists them here too) come with their columns.
    const { rows: constraints } = await client.query<{ name: string; type: string; def: string }>(
      `SELECT quote_ident(conname) AS name, contype AS type, pg_get_constraintdef(oid) AS def FROM pg_constraint
        WHERE conrelid = $1 AND contype IN ('p', 'u', 'c', 'x', 'f') ORDER BY contype = 'f', conname`,
      [t.oid],
    );
    for (const c of constraints) (c.type === 'f' ? postData : preData).push(`ALTER TABLE ${t.name} ADD CONSTRAINT ${c.name} ${c.def}`);
    const { rows: indexes } = await client.query<{ def: string; name: string }>(
      `SELECT pg_get_indexdef(i.indexrelid) AS def, i.indexrelid::regclass::text AS name FROM pg_index i
        WHERE i.indrelid = $1 AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid)
        ORDER BY i.indexrelid`,
      [t.oid],
    );
    for (const i of indexes) preData.push(i.def);
    if (t.replident === 'f') preData.push(`ALTER TABLE ${t.name} REPLICA IDENTITY FULL`);
    if (t.replident === 'i') {
      const { rows } = await client.query<{ name: string }>(
        'SELECT quote_ident(c.relname) AS name FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1 AND i.indisreplident',
        [t.oid],
      );
      if (rows[0]) preData.push(`ALTER TABLE ${t.name} REPLICA IDENTITY USING INDEX ${rows[0].name}`);
    }
    if (t.replident === 'n' || (t.replident === 'd' && !t.has_key)) withoutReplicaIdentity.push(t.name);
  }
  return { preData, postData, tables: schemaTables, sequences: result, withoutReplicaIdentity, unsupported: unsupported.map((r) => r.what) };
}

/**
 * A digest of the tenant's relations, columns, constraints and indexes: equal before and after unless the
 * schema changed (a migration ran meanwhile), which a move must notice before it switches, since logical
 * replication carries rows, never DDL. A move's own fence table (`tenantdb_move_…`) is left out.
 * @internal
 */
export async function schemaFingerprint(client: pg.ClientBase): Promise<string> {
  const { rows } = await client.query<{ digest: string | null }>(
    `SELECT md5(string_agg(x, ';' ORDER BY x)) AS digest FROM (
       SELECT format('r %s %s %s', c.oid, c.relname, c.relkind) AS x FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE ${USER_SCHEMA} AND ${NOT_MOVE_OBJECT('c.relname')}
       UNION ALL
       SELECT format('a %s %s %s %s %s', a.attrelid, a.attnum, a.attname, a.atttypid, a.attnotnull) FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE ${USER_SCHEMA} AND ${NOT_MOVE_OBJECT('c.relname')} AND a.attnum > 0 AND NOT a.attisdropped
       UNION ALL
       SELECT format('c %s %s %s', co.conrelid, co.conname, co.contype) FROM pg_constraint co
         JOIN pg_namespace n ON n.oid = co.connamespace WHERE ${USER_SCHEMA} AND ${NOT_MOVE_OBJECT('co.conname')}
     ) s`,
  );
  return rows[0]?.digest ?? '';
}

/** Runs the statements on `client`, one by one (a failing one names itself in the error's cause). */
export async function applySchema(client: pg.ClientBase, statements: string[]): Promise<void> {
  for (const sql of statements) await client.query(sql);
}

/** Rows fetched and inserted per round trip. */
const BATCH_ROWS = 2_000;

/**
 * Copies every row of every table from `source` to `target` (both connections, the source inside a
 * transaction whose snapshot the copy reads): each row in its text form (what COPY sends), cast back into
 * the target table's row type, so every type goes over exactly. Returns the rows copied.
 * @internal
 */
export async function copyRows(
  source: pg.ClientBase,
  target: pg.ClientBase,
  tables: SchemaTable[],
  onTable: (table: string, rows: number) => void,
): Promise<number> {
  let total = 0;
  for (const [index, table] of tables.entries()) {
    const cursor = quoteIdent(`tenantdb_move_${index}`);
    await source.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT r::text AS r FROM ONLY ${table.name} r`);
    const columns = table.columns.join(', ');
    const picks = table.columns.map((c) => `(x).${c}`).join(', ');
    const insert =
      `INSERT INTO ${table.name} (${columns})${table.identityAlways ? ' OVERRIDING SYSTEM VALUE' : ''} ` +
      `SELECT ${picks} FROM (SELECT r::${table.name} AS x FROM unnest($1::text[]) r) q`;
    let rows = 0;
    for (;;) {
      const batch = await source.query<{ r: string }>(`FETCH ${BATCH_ROWS} FROM ${cursor}`);
      if (batch.rows.length === 0) break;
      if (table.columns.length > 0) await target.query(insert, [batch.rows.map((row) => row.r)]);
      rows += batch.rows.length;
    }
    await source.query(`CLOSE ${cursor}`);
    total += rows;
    onTable(table.name, rows);
  }
  return total;
}

/** Sets every sequence of the target to the source's value (`setval`, with `is_called`); returns how many. */
export async function copySequences(source: pg.ClientBase, target: pg.ClientBase, sequences: SchemaSequence[]): Promise<number> {
  for (const s of sequences) {
    const { rows } = await source.query<{ last_value: string; is_called: boolean }>(`SELECT last_value::text, is_called FROM ${s.source}`);
    await target.query(`SELECT setval(${s.target}, $1::bigint, $2)`, [rows[0]!.last_value, rows[0]!.is_called]);
  }
  return sequences.length;
}
