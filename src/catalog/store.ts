// The Data Catalog's storage: databases, tables and partitions in the metadata store (SQLite
// embedded, PostgreSQL shared; migrations in src/store/db.ts and src/store/postgres.ts), one JSON
// document per entity in the shape the Glue API answers (timestamps as epoch milliseconds). Names are stored lower-case, as Glue folds database and
// table names for Hive compatibility, so every lookup here takes the folded name. A database's
// tables and a table's partitions go with it, in one transaction. Bounded by named limits (AWS's
// default quotas) because any caller with glue:Create* rights can fill the store otherwise.
// Listings are keyset pages (after a name, or after a partition's values), never whole tables.

import type { Clock } from '../clock.js';
import type { CachedTable, MetadataCache, Stmt } from '../store/metadata.js';

/** AWS's default quotas per catalog / database / table. */
export const DEFAULT_MAX_DATABASES = 10_000;
export const DEFAULT_MAX_TABLES_PER_DATABASE = 200_000;
export const DEFAULT_MAX_PARTITIONS_PER_TABLE = 10_000_000;
/**
 * A filtered listing (GetPartitions with an Expression, GetTables with a pattern or rights on only
 * some tables) reads at most this many entries per call: a filter that matches few of a huge
 * table's partitions answers a short page and a NextToken, as AWS does, instead of one request
 * scanning everything.
 */
export const DEFAULT_MAX_SCANNED_PER_CALL = 100_000;

export interface CatalogLimits {
  maxDatabases: number;
  maxTablesPerDatabase: number;
  maxPartitionsPerTable: number;
  maxScannedPerCall: number;
}

export const DEFAULT_CATALOG_LIMITS: CatalogLimits = {
  maxDatabases: DEFAULT_MAX_DATABASES,
  maxTablesPerDatabase: DEFAULT_MAX_TABLES_PER_DATABASE,
  maxPartitionsPerTable: DEFAULT_MAX_PARTITIONS_PER_TABLE,
  maxScannedPerCall: DEFAULT_MAX_SCANNED_PER_CALL,
};

/** A refusal in Glue's terms (the API maps it to its error type, the DDL runner to a message). */
export class CatalogError extends Error {
  constructor(
    readonly code: 'EntityNotFoundException' | 'AlreadyExistsException' | 'InvalidInputException' | 'ResourceNumberLimitExceededException',
    message: string,
  ) {
    super(message);
  }
}

export const databaseNotFound = (name: string) => new CatalogError('EntityNotFoundException', `Database ${name} not found.`);
export const tableNotFound = (name: string) => new CatalogError('EntityNotFoundException', `Table ${name} not found.`);
export const partitionNotFound = () => new CatalogError('EntityNotFoundException', 'Cannot find partition.');

export type Doc = Record<string, unknown>;

export interface DatabaseRecord extends Doc {
  Name: string;
  CreateTime: number;
}
export interface TableRecord extends Doc {
  Name: string;
  DatabaseName: string;
  CreateTime: number;
  UpdateTime: number;
  VersionId: string;
  PartitionKeys?: Array<{ Name: string; Type?: string; Comment?: string; Parameters?: Record<string, string> }>;
  StorageDescriptor?: Doc;
}
export interface PartitionRecord extends Doc {
  Values: string[];
  DatabaseName: string;
  TableName: string;
  CreationTime: number;
}

/** Glue's folding of database and table names. */
export const fold = (name: string) => name.toLowerCase();

/** A partition's values as its sort and identity key. */
const valuesKey = (values: readonly string[]) => JSON.stringify(values);

interface DatabaseRow {
  name: string;
  data: string;
}
interface TableRow {
  db: string;
  name: string;
  data: string;
  partitions: number;
}

const DATABASES = { table: 'glue_databases', keys: ['name'] } as const;
const TABLES = { table: 'glue_tables', keys: ['db', 'name'] } as const;

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The catalog over the metadata store (store/metadata.ts). Databases and table definitions are
 * read by every query and are few in practice: held in memory on every node (synchronous reads,
 * kept current across nodes). Partitions may be millions: read and written asynchronously through
 * the store's driver. Every write is one transaction whose checks (exists, quota) are part of its
 * statements, so nodes writing together cannot both pass them.
 */
export class CatalogStore {
  private constructor(
    private meta: MetadataCache,
    private dbs: CachedTable<DatabaseRow>,
    private tables: CachedTable<TableRow>,
    private clock: Clock,
    readonly limits: CatalogLimits,
  ) {}

  static async open(meta: MetadataCache, clock: Clock, limits: CatalogLimits = DEFAULT_CATALOG_LIMITS): Promise<CatalogStore> {
    return new CatalogStore(meta, await meta.table<DatabaseRow>(DATABASES), await meta.table<TableRow>(TABLES), clock, limits);
  }

  // --- databases ------------------------------------------------------------------------------------

  async createDatabase(doc: Doc & { Name: string }): Promise<DatabaseRecord> {
    const name = fold(doc.Name);
    const rec: DatabaseRecord = { ...doc, Name: name, CreateTime: this.clock.now() };
    if (this.getDatabase(name)) throw new CatalogError('AlreadyExistsException', 'Database already exists.');
    if (this.dbs.size >= this.limits.maxDatabases) throw this.tooManyDatabases();
    let inserted: unknown[];
    try {
      [inserted] = await this.meta.write(
        [{ sql: 'INSERT INTO glue_databases (name, data) SELECT ?, ? WHERE (SELECT count(*) FROM glue_databases) < ? RETURNING name', params: [name, JSON.stringify(rec), this.limits.maxDatabases] }],
        [{ table: DATABASES.table, key: [name] }],
      );
    } catch (e) {
      if (this.meta.driver.isUniqueViolation(e)) throw new CatalogError('AlreadyExistsException', 'Database already exists.');
      throw e;
    }
    if (inserted.length === 0) throw this.tooManyDatabases();
    return rec;
  }

  getDatabase(name: string): DatabaseRecord | undefined {
    const row = this.dbs.get(fold(name));
    return row && (JSON.parse(row.data) as DatabaseRecord);
  }

  requireDatabase(name: string): DatabaseRecord {
    const d = this.getDatabase(name);
    if (!d) throw databaseNotFound(fold(name));
    return d;
  }

  /** Replaces the definition, keeping the name and creation time. */
  async updateDatabase(name: string, doc: Doc): Promise<DatabaseRecord> {
    const prev = this.requireDatabase(name);
    const rec: DatabaseRecord = { ...doc, Name: prev.Name, CreateTime: prev.CreateTime };
    await this.meta.write([{ sql: 'UPDATE glue_databases SET data = ? WHERE name = ?', params: [JSON.stringify(rec), prev.Name] }], [{ table: DATABASES.table, key: [prev.Name] }]);
    return rec;
  }

  /** Removes the database with its tables and their partitions. */
  async deleteDatabase(name: string): Promise<void> {
    const n = fold(name);
    this.requireDatabase(n);
    await this.meta.write(
      [
        { sql: 'DELETE FROM glue_partitions WHERE db = ?', params: [n] },
        { sql: 'DELETE FROM glue_tables WHERE db = ?', params: [n] },
        { sql: 'DELETE FROM glue_databases WHERE name = ?', params: [n] },
      ],
      [
        { table: TABLES.table, key: [n] },
        { table: DATABASES.table, key: [n] },
      ],
    );
  }

  listDatabases(after: string, limit: number): DatabaseRecord[] {
    return this.dbs
      .filter((r) => r.name > after)
      .sort((a, b) => byKey(a.name, b.name))
      .slice(0, limit)
      .map((r) => JSON.parse(r.data) as DatabaseRecord);
  }

  // --- tables ------------------------------------------------------------------------------------------

  async createTable(database: string, doc: Doc & { Name: string }): Promise<TableRecord> {
    const db = fold(database);
    const name = fold(doc.Name);
    const now = this.clock.now();
    const rec: TableRecord = { ...doc, Name: name, DatabaseName: db, CreateTime: now, UpdateTime: now, VersionId: '0' };
    this.requireDatabase(db);
    if (this.getTable(db, name)) throw new CatalogError('AlreadyExistsException', 'Table already exists.');
    let inserted: unknown[];
    try {
      [inserted] = await this.meta.write(
        [
          {
            sql: `INSERT INTO glue_tables (db, name, data, partitions)
                  SELECT ?, ?, ?, 0 WHERE EXISTS (SELECT 1 FROM glue_databases WHERE name = ?) AND (SELECT count(*) FROM glue_tables WHERE db = ?) < ?
                  RETURNING name`,
            params: [db, name, JSON.stringify(rec), db, db, this.limits.maxTablesPerDatabase],
          },
        ],
        [{ table: TABLES.table, key: [db, name] }],
      );
    } catch (e) {
      if (this.meta.driver.isUniqueViolation(e)) throw new CatalogError('AlreadyExistsException', 'Table already exists.');
      throw e;
    }
    if (inserted.length === 0) {
      this.requireDatabase(db);
      throw new CatalogError('ResourceNumberLimitExceededException', `Database ${db} already holds ${this.limits.maxTablesPerDatabase} tables, the most allowed.`);
    }
    return rec;
  }

  getTable(database: string, name: string): TableRecord | undefined {
    const row = this.tables.get(fold(database), fold(name));
    return row && (JSON.parse(row.data) as TableRecord);
  }

  /** The table, or EntityNotFoundException for its database first, then for itself. */
  requireTable(database: string, name: string): TableRecord {
    this.requireDatabase(database);
    const t = this.getTable(database, name);
    if (!t) throw tableNotFound(fold(name));
    return t;
  }

  /** Replaces the definition; the version goes up by one, the creation time stays. */
  async updateTable(database: string, doc: Doc & { Name: string }): Promise<TableRecord> {
    const prev = this.requireTable(database, doc.Name);
    const rec: TableRecord = {
      ...doc,
      Name: prev.Name,
      DatabaseName: prev.DatabaseName,
      CreateTime: prev.CreateTime,
      UpdateTime: this.clock.now(),
      VersionId: String(Number(prev.VersionId) + 1),
      CreatedBy: prev.CreatedBy,
    };
    await this.meta.write(
      [{ sql: 'UPDATE glue_tables SET data = ? WHERE db = ? AND name = ?', params: [JSON.stringify(rec), prev.DatabaseName, prev.Name] }],
      [{ table: TABLES.table, key: [prev.DatabaseName, prev.Name] }],
    );
    return rec;
  }

  async deleteTable(database: string, name: string): Promise<void> {
    const t = this.requireTable(database, name);
    await this.meta.write(
      [
        { sql: 'DELETE FROM glue_partitions WHERE db = ? AND tbl = ?', params: [t.DatabaseName, t.Name] },
        { sql: 'DELETE FROM glue_tables WHERE db = ? AND name = ?', params: [t.DatabaseName, t.Name] },
      ],
      [{ table: TABLES.table, key: [t.DatabaseName, t.Name] }],
    );
  }

  listTables(database: string, after: string, limit: number): TableRecord[] {
    const db = fold(database);
    return this.tables
      .filter((r) => r.db === db && r.name > after)
      .sort((a, b) => byKey(a.name, b.name))
      .slice(0, limit)
      .map((r) => JSON.parse(r.data) as TableRecord);
  }

  // --- partitions -------------------------------------------------------------------------------------

  /**
   * Adds partitions to a table; each one's outcome in order: undefined when added, else why not
   * (BatchCreatePartition answers them as Errors; CreatePartition throws the first). The inserts
   * and the table's partition count move in one transaction; the quota is checked against the
   * count as this node sees it (nodes adding at once may overshoot it by what they add together).
   */
  async createPartitions(table: TableRecord, docs: Array<Doc & { Values: string[] }>): Promise<Array<CatalogError | undefined>> {
    const keys = table.PartitionKeys?.length ?? 0;
    const count = Number(this.tables.get(table.DatabaseName, table.Name)?.partitions ?? 0);
    const existing = await this.existingValues(table, docs.map((d) => d.Values));
    const stmts: Stmt[] = [];
    const slots: number[] = [];
    const out: Array<CatalogError | undefined> = docs.map((doc, i) => {
      if (doc.Values.length !== keys) {
        return new CatalogError('InvalidInputException', `The number of partition values (${doc.Values.length}) is not the number of partition keys of table ${table.Name} (${keys}).`);
      }
      const key = valuesKey(doc.Values);
      if (existing.has(key)) return new CatalogError('AlreadyExistsException', 'Partition already exists.');
      if (count + stmts.length >= this.limits.maxPartitionsPerTable) {
        return new CatalogError('ResourceNumberLimitExceededException', `Table ${table.Name} already holds ${this.limits.maxPartitionsPerTable} partitions, the most allowed.`);
      }
      existing.add(key);
      const rec: PartitionRecord = { ...doc, Values: [...doc.Values], DatabaseName: table.DatabaseName, TableName: table.Name, CreationTime: this.clock.now() };
      stmts.push({
        sql: 'INSERT INTO glue_partitions (db, tbl, vals, data) VALUES (?, ?, ?, ?) ON CONFLICT (db, tbl, vals) DO NOTHING RETURNING vals',
        params: [table.DatabaseName, table.Name, key, JSON.stringify(rec)],
      });
      slots.push(i);
      return undefined;
    });
    if (stmts.length === 0) return out;
    const rows = await this.meta.write([...stmts, this.countStmt(table, stmts.length)], [{ table: TABLES.table, key: [table.DatabaseName, table.Name] }]);
    // One another node added since the read above was not added here: say so, and count it once.
    let raced = 0;
    slots.forEach((i, j) => {
      if (rows[j].length === 0) {
        out[i] = new CatalogError('AlreadyExistsException', 'Partition already exists.');
        raced++;
      }
    });
    if (raced > 0) await this.meta.write([this.countStmt(table, -raced)], [{ table: TABLES.table, key: [table.DatabaseName, table.Name] }]);
    return out;
  }

  async getPartition(table: TableRecord, values: readonly string[]): Promise<PartitionRecord | undefined> {
    const row = (await this.meta.driver.all<{ data: string }>('SELECT data FROM glue_partitions WHERE db = ? AND tbl = ? AND vals = ?', [table.DatabaseName, table.Name, valuesKey(values)]))[0];
    return row && (JSON.parse(row.data) as PartitionRecord);
  }

  /** Removes partitions; for each, whether it existed (the removal and the count move together). */
  async deletePartitions(table: TableRecord, list: ReadonlyArray<readonly string[]>): Promise<boolean[]> {
    if (list.length === 0) return [];
    const existing = await this.existingValues(table, list);
    const gone = new Set<string>();
    const stmts: Stmt[] = [];
    const slots: number[] = [];
    const out = list.map((values, i) => {
      const key = valuesKey(values);
      if (!existing.has(key) || gone.has(key)) return false;
      gone.add(key);
      stmts.push({ sql: 'DELETE FROM glue_partitions WHERE db = ? AND tbl = ? AND vals = ? RETURNING vals', params: [table.DatabaseName, table.Name, key] });
      slots.push(i);
      return true;
    });
    if (stmts.length === 0) return out;
    const rows = await this.meta.write([...stmts, this.countStmt(table, -stmts.length)], [{ table: TABLES.table, key: [table.DatabaseName, table.Name] }]);
    let raced = 0;
    slots.forEach((i, j) => {
      if (rows[j].length === 0) {
        out[i] = false;
        raced++;
      }
    });
    if (raced > 0) await this.meta.write([this.countStmt(table, raced)], [{ table: TABLES.table, key: [table.DatabaseName, table.Name] }]);
    return out;
  }

  /** Which of these partitions exist (by their values key). */
  private async existingValues(table: TableRecord, lists: ReadonlyArray<readonly string[]>): Promise<Set<string>> {
    const keys = [...new Set(lists.map(valuesKey))];
    const found = new Set<string>();
    // Batches keep the statement's parameter count far below either database's limit.
    for (let i = 0; i < keys.length; i += 500) {
      const batch = keys.slice(i, i + 500);
      const rows = await this.meta.driver.all<{ vals: string }>(
        `SELECT vals FROM glue_partitions WHERE db = ? AND tbl = ? AND vals IN (${batch.map(() => '?').join(', ')})`,
        [table.DatabaseName, table.Name, ...batch],
      );
      for (const r of rows) found.add(r.vals);
    }
    return found;
  }

  /** Partitions after `afterKey` (a previous page's last valuesKey, '' from the start), in key order. */
  async listPartitions(table: TableRecord, afterKey: string, limit: number): Promise<Array<{ key: string; partition: PartitionRecord }>> {
    const rows = await this.meta.driver.all<{ vals: string; data: string }>('SELECT vals, data FROM glue_partitions WHERE db = ? AND tbl = ? AND vals > ? ORDER BY vals LIMIT ?', [
      table.DatabaseName,
      table.Name,
      afterKey,
      limit,
    ]);
    return rows.map((r) => ({ key: r.vals, partition: JSON.parse(r.data) as PartitionRecord }));
  }

  /** Moves the table's partition count by `delta` (relative, so concurrent writers' moves add up). */
  private countStmt(table: TableRecord, delta: number): Stmt {
    return { sql: 'UPDATE glue_tables SET partitions = partitions + ? WHERE db = ? AND name = ?', params: [delta, table.DatabaseName, table.Name] };
  }

  private tooManyDatabases(): CatalogError {
    return new CatalogError('ResourceNumberLimitExceededException', `The catalog already holds ${this.limits.maxDatabases} databases, the most allowed.`);
  }
}
