import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type pg from "pg";

/**
 * A database schema reduced to what the drift test compares: per table its columns (type, nullability,
 * default), primary key, indexes and foreign keys, plus enum types. Built once from schema.prisma
 * (what Prisma expects) and once from pg_catalog (what the migrations produced), then compared.
 */
export type Column = { type: string; nullable: boolean; default: string | null };
export type Index = { unique: boolean; columns: string[] };
export type ForeignKey = {
  columns: string[];
  references: string;
  referencedColumns: string[];
  onDelete: string;
  onUpdate: string;
};
export type Table = {
  columns: Record<string, Column>;
  primaryKey: { name: string; columns: string[] };
  indexes: Record<string, Index>;
  foreignKeys: Record<string, ForeignKey>;
};
export type SchemaShape = { tables: Record<string, Table>; enums: Record<string, string[]> };

// Only the parts of Prisma's DMMF this file reads.
type DmmfField = {
  name: string;
  dbName?: string | null;
  kind: "scalar" | "object" | "enum" | "unsupported";
  type: string;
  isList: boolean;
  isRequired: boolean;
  isId: boolean;
  isUpdatedAt?: boolean;
  hasDefaultValue: boolean;
  default?: unknown;
  nativeType?: [string, string[]] | null;
  relationFromFields?: string[];
  relationToFields?: string[];
  relationOnDelete?: string;
  relationOnUpdate?: string;
};
type DmmfModel = {
  name: string;
  dbName: string | null;
  fields: DmmfField[];
  primaryKey: { name: string | null; fields: string[] } | null;
};
type DmmfIndex = {
  model: string;
  type: "id" | "unique" | "normal" | "fulltext";
  dbName?: string | null;
  fields: { name: string }[];
};
type Datamodel = {
  models: DmmfModel[];
  enums: { name: string; dbName?: string | null; values: { name: string; dbName?: string | null }[] }[];
  indexes: DmmfIndex[];
};

const SCALAR_TYPES: Record<string, string> = {
  String: "text",
  Int: "integer",
  BigInt: "bigint",
  Boolean: "boolean",
  DateTime: "timestamp(3) without time zone",
  Json: "jsonb",
  Float: "double precision",
  Decimal: "numeric(65,30)",
  Bytes: "bytea",
};

// @db.* attributes this project may use; anything else fails loudly so the test gets extended.
const NATIVE_TYPES: Record<string, (args: string[]) => string> = {
  Text: () => "text",
  Uuid: () => "uuid",
  VarChar: ([n]) => `character varying(${n})`,
  Timestamptz: ([p = "3"]) => `timestamp(${p}) with time zone`,
  Timestamp: ([p = "3"]) => `timestamp(${p}) without time zone`,
  Integer: () => "integer",
  SmallInt: () => "smallint",
  BigInt: () => "bigint",
  Real: () => "real",
  DoublePrecision: () => "double precision",
  JsonB: () => "jsonb",
};

const REFERENTIAL_ACTIONS: Record<string, string> = {
  Cascade: "CASCADE",
  Restrict: "RESTRICT",
  NoAction: "NO ACTION",
  SetNull: "SET NULL",
  SetDefault: "SET DEFAULT",
};

/** How Postgres prints an identifier in a type name: quoted when it is not all lower case. */
const pgIdent = (name: string) => (/^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name}"`);

function prismaName(table: string, columns: string[], suffix: string): string {
  const name = `${table}_${columns.join("_")}_${suffix}`;
  if (name.length > 63) throw new Error(`${name} is longer than Postgres allows: give it an explicit map: name`);
  return name;
}

/** Reads schema.prisma with Prisma's own parser (WASM, works offline). */
export async function readDatamodel(schemaPath: string): Promise<Datamodel> {
  // @prisma/internals is CommonJS and large; load it only in the test that needs it.
  const { getDMMF } = createRequire(import.meta.url)("@prisma/internals") as {
    getDMMF: (o: { datamodel: string }) => Promise<{ datamodel: Datamodel }>;
  };
  return (await getDMMF({ datamodel: readFileSync(schemaPath, "utf8") })).datamodel;
}

export function expectedShape(datamodel: Datamodel): SchemaShape {
  const tableOf = new Map(datamodel.models.map((m) => [m.name, m.dbName ?? m.name]));
  const enumOf = new Map(datamodel.enums.map((e) => [e.name, e.dbName ?? e.name]));
  const column = (model: DmmfModel, field: string) => {
    const f = model.fields.find((x) => x.name === field);
    if (!f) throw new Error(`${model.name}.${field} not found`);
    return f.dbName ?? f.name;
  };
  const tables: Record<string, Table> = {};

  for (const model of datamodel.models) {
    const table = tableOf.get(model.name) as string;
    const columns: Record<string, Column> = {};
    for (const f of model.fields) {
      if (f.kind === "object") continue;
      if (f.kind === "unsupported") throw new Error(`${model.name}.${f.name}: Unsupported types are not compared`);
      let type: string;
      if (f.kind === "enum") type = pgIdent(enumOf.get(f.type) as string);
      else if (f.nativeType) {
        const native = NATIVE_TYPES[f.nativeType[0]];
        if (!native) throw new Error(`${model.name}.${f.name}: @db.${f.nativeType[0]} is not known to the drift test`);
        type = native(f.nativeType[1]);
      } else type = SCALAR_TYPES[f.type] ?? `unknown ${f.type}`;
      if (f.isList) type += "[]";
      columns[f.dbName ?? f.name] = { type, nullable: !f.isRequired, default: expectedDefault(model, f, type) };
    }
    const pkFields = model.primaryKey?.fields ?? model.fields.filter((f) => f.isId).map((f) => f.name);
    const pkColumns = pkFields.map((f) => column(model, f));
    tables[table] = {
      columns,
      primaryKey: { name: model.primaryKey?.name ?? `${table}_pkey`, columns: pkColumns },
      indexes: {},
      foreignKeys: {},
    };
    for (const f of model.fields) {
      if (f.kind !== "object" || !f.relationFromFields?.length) continue;
      const target = datamodel.models.find((m) => m.name === f.type) as DmmfModel;
      const from = f.relationFromFields.map((x) => column(model, x));
      // Prisma's defaults: Restrict for required relations, SetNull for optional ones; Cascade on update.
      const onDelete = f.relationOnDelete ?? (f.isRequired ? "Restrict" : "SetNull");
      tables[table].foreignKeys[prismaName(table, from, "fkey")] = {
        columns: from,
        references: tableOf.get(target.name) as string,
        referencedColumns: (f.relationToFields ?? []).map((x) => column(target, x)),
        onDelete: REFERENTIAL_ACTIONS[onDelete] ?? onDelete,
        onUpdate: REFERENTIAL_ACTIONS[f.relationOnUpdate ?? "Cascade"] ?? "?",
      };
    }
  }

  for (const index of datamodel.indexes) {
    if (index.type === "id") continue;
    const model = datamodel.models.find((m) => m.name === index.model) as DmmfModel;
    const table = tableOf.get(model.name) as string;
    const columns = index.fields.map((f) => column(model, f.name));
    const name = index.dbName ?? prismaName(table, columns, index.type === "unique" ? "key" : "idx");
    (tables[table] as Table).indexes[name] = { unique: index.type === "unique", columns };
  }

  const enums = Object.fromEntries(
    datamodel.enums.map((e) => [e.dbName ?? e.name, e.values.map((v) => v.dbName ?? v.name)]),
  );
  return { tables, enums };
}

function expectedDefault(model: DmmfModel, f: DmmfField, type: string): string | null {
  if (!f.hasDefaultValue) return null;
  const value = f.default;
  if (typeof value === "object" && value !== null && "name" in value) {
    const fn = value as { name: string; args: unknown[] };
    if (fn.name === "now") return "CURRENT_TIMESTAMP";
    if (fn.name === "dbgenerated") return String(fn.args[0]);
    // cuid(), uuid() and friends are filled in by Prisma's client, not by the database.
    if (["cuid", "uuid", "nanoid", "ulid"].includes(fn.name)) return null;
    throw new Error(`${model.name}.${f.name}: default ${fn.name}() is not known to the drift test`);
  }
  if (typeof value === "string") {
    // Postgres prints a string default with a cast to the column's type: 'free'::text, 'queued'::"BuildStatus".
    return `'${value.replace(/'/g, "''")}'::${type}`;
  }
  return String(value);
}

const ACTION_CODES: Record<string, string> = {
  a: "NO ACTION",
  r: "RESTRICT",
  c: "CASCADE",
  n: "SET NULL",
  d: "SET DEFAULT",
};

/** The same shape, read from a live database's catalog (schema "public"). */
export async function actualShape(
  client: pg.Client | pg.Pool,
  ignoreTables: string[] = ["_prisma_migrations"],
): Promise<SchemaShape> {
  const tables: Record<string, Table> = {};
  const table = (name: string) => {
    tables[name] ??= { columns: {}, primaryKey: { name: "", columns: [] }, indexes: {}, foreignKeys: {} };
    return tables[name];
  };
  const skip = (name: string) => ignoreTables.includes(name);

  const columns = await client.query<{ tbl: string; col: string; type: string; notnull: boolean; def: string | null }>(`
    SELECT c.relname AS tbl, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type,
           a.attnotnull AS notnull, pg_get_expr(d.adbin, d.adrelid) AS def
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY c.relname, a.attnum`);
  for (const r of columns.rows) {
    if (skip(r.tbl)) continue;
    table(r.tbl).columns[r.col] = { type: r.type, nullable: !r.notnull, default: r.def };
  }

  const indexes = await client.query<{ tbl: string; name: string; unique: boolean; primary: boolean; cols: string[] }>(`
    SELECT t.relname AS tbl, i.relname AS name, x.indisunique AS unique, x.indisprimary AS primary,
           array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, ord)
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.ord)::text[] AS cols
    FROM pg_index x
    JOIN pg_class t ON t.oid = x.indrelid
    JOIN pg_class i ON i.oid = x.indexrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = 'public'`);
  for (const r of indexes.rows) {
    if (skip(r.tbl)) continue;
    if (r.primary) table(r.tbl).primaryKey = { name: r.name, columns: r.cols };
    else table(r.tbl).indexes[r.name] = { unique: r.unique, columns: r.cols };
  }

  const fks = await client.query<{
    tbl: string;
    name: string;
    cols: string[];
    ref: string;
    refcols: string[];
    del: string;
    upd: string;
  }>(`
    SELECT t.relname AS tbl, c.conname AS name, r.relname AS ref,
           array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o)
                 JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o)::text[] AS cols,
           array(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o)
                 JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o)::text[] AS refcols,
           c.confdeltype AS del, c.confupdtype AS upd
    FROM pg_constraint c
    JOIN pg_class t ON t.oid = c.conrelid
    JOIN pg_class r ON r.oid = c.confrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    WHERE n.nspname = 'public' AND c.contype = 'f'`);
  for (const r of fks.rows) {
    if (skip(r.tbl)) continue;
    table(r.tbl).foreignKeys[r.name] = {
      columns: r.cols,
      references: r.ref,
      referencedColumns: r.refcols,
      onDelete: ACTION_CODES[r.del] ?? r.del,
      onUpdate: ACTION_CODES[r.upd] ?? r.upd,
    };
  }

  const enumRows = await client.query<{ name: string; value: string }>(`
    SELECT t.typname AS name, e.enumlabel AS value
    FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = 'public' ORDER BY t.typname, e.enumsortorder`);
  const enums: Record<string, string[]> = {};
  for (const r of enumRows.rows) {
    enums[r.name] = [...(enums[r.name] ?? []), r.value];
  }

  return { tables, enums };
}
