// The Data Catalog's storage: databases, tables and partitions in the metadata store (SQLite,
// migration in src/store/db.ts), one JSON document per entity in the shape the Glue API answers
// (timestamps as epoch milliseconds). Names are stored lower-case, as Glue folds database and
// table names for Hive compatibility, so every lookup here takes the folded name. A database's
// tables and a table's partitions go with it, in one transaction. Bounded by named limits (AWS's
// default quotas) because any caller with glue:Create* rights can fill the store otherwise.
// Listings are keyset pages (after a name, or after a partition's values), never whole tables.

import type { Clock } from '../clock.js';
import type { Db } from '../store/db.js';

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

export class CatalogStore {
  constructor(
    private db: Db,
    private clock: Clock,
    readonly limits: CatalogLimits = DEFAULT_CATALOG_LIMITS,
  ) {}

  // --- databases ------------------------------------------------------------------------------------

  createDatabase(doc: Doc & { Name: string }): DatabaseRecord {
    const name = fold(doc.Name);
    const rec: DatabaseRecord = { ...doc, Name: name, CreateTime: this.clock.now() };
    this.db.transaction(() => {
      if (this.getDatabase(name)) throw new CatalogError('AlreadyExistsException', 'Database already exists.');
      const n = (this.db.prepare('SELECT count(*) AS n FROM glue_databases').get() as { n: number }).n;
      if (n >= this.limits.maxDatabases) throw new CatalogError('ResourceNumberLimitExceededException', `The catalog already holds ${this.limits.maxDatabases} databases, the most allowed.`);
      this.db.prepare('INSERT INTO glue_databases (name, data) VALUES (?, ?)').run(name, JSON.stringify(rec));
    })();
    return rec;
  }

  getDatabase(name: string): DatabaseRecord | undefined {
    const row = this.db.prepare('SELECT data FROM glue_databases WHERE name = ?').get(fold(name)) as { data: string } | undefined;
    return row && (JSON.parse(row.data) as DatabaseRecord);
  }

  requireDatabase(name: string): DatabaseRecord {
    const d = this.getDatabase(name);
    if (!d) throw databaseNotFound(fold(name));
    return d;
  }

  /** Replaces the definition, keeping the name and creation time. */
  updateDatabase(name: string, doc: Doc): DatabaseRecord {
    const prev = this.requireDatabase(name);
    const rec: DatabaseRecord = { ...doc, Name: prev.Name, CreateTime: prev.CreateTime };
    this.db.prepare('UPDATE glue_databases SET data = ? WHERE name = ?').run(JSON.stringify(rec), prev.Name);
    return rec;
  }

  /** Removes the database with its tables and their partitions. */
  deleteDatabase(name: string): void {
    const n = fold(name);
    this.db.transaction(() => {
      this.requireDatabase(n);
      this.db.prepare('DELETE FROM glue_partitions WHERE db = ?').run(n);
      this.db.prepare('DELETE FROM glue_tables WHERE db = ?').run(n);
      this.db.prepare('DELETE FROM glue_databases WHERE name = ?').run(n);
    })();
  }

  listDatabases(after: string, limit: number): DatabaseRecord[] {
    return (this.db.prepare('SELECT data FROM glue_databases WHERE name > ? ORDER BY name LIMIT ?').all(after, limit) as Array<{ data: string }>).map(
      (r) => JSON.parse(r.data) as DatabaseRecord,
    );
  }

  // --- tables ------------------------------------------------------------------------------------------

  createTable(database: string, doc: Doc & { Name: string }): TableRecord {
    const db = fold(database);
    const name = fold(doc.Name);
    const now = this.clock.now();
    const rec: TableRecord = { ...doc, Name: name, DatabaseName: db, CreateTime: now, UpdateTime: now, VersionId: '0' };
    this.db.transaction(() => {
      this.requireDatabase(db);
      if (this.getTable(db, name)) throw new CatalogError('AlreadyExistsException', 'Table already exists.');
      const n = (this.db.prepare('SELECT count(*) AS n FROM glue_tables WHERE db = ?').get(db) as { n: number }).n;
      if (n >= this.limits.maxTablesPerDatabase) {
        throw new CatalogError('ResourceNumberLimitExceededException', `Database ${db} already holds ${this.limits.maxTablesPerDatabase} tables, the most allowed.`);
      }
      this.db.prepare('INSERT INTO glue_tables (db, name, data, partitions) VALUES (?, ?, ?, 0)').run(db, name, JSON.stringify(rec));
    })();
    return rec;
  }

  getTable(database: string, name: string): TableRecord | undefined {
    const row = this.db.prepare('SELECT data FROM glue_tables WHERE db = ? AND name = ?').get(fold(database), fold(name)) as { data: string } | undefined;
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
  updateTable(database: string, doc: Doc & { Name: string }): TableRecord {
    return this.db.transaction(() => {
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
      this.db.prepare('UPDATE glue_tables SET data = ? WHERE db = ? AND name = ?').run(JSON.stringify(rec), prev.DatabaseName, prev.Name);
      return rec;
    })();
  }

  deleteTable(database: string, name: string): void {
    this.db.transaction(() => {
      const t = this.requireTable(database, name);
      this.db.prepare('DELETE FROM glue_partitions WHERE db = ? AND tbl = ?').run(t.DatabaseName, t.Name);
      this.db.prepare('DELETE FROM glue_tables WHERE db = ? AND name = ?').run(t.DatabaseName, t.Name);
    })();
  }

  listTables(database: string, after: string, limit: number): TableRecord[] {
    return (this.db.prepare('SELECT data FROM glue_tables WHERE db = ? AND name > ? ORDER BY name LIMIT ?').all(fold(database), after, limit) as Array<{ data: string }>).map(
      (r) => JSON.parse(r.data) as TableRecord,
    );
  }

  // --- partitions -------------------------------------------------------------------------------------

  /**
   * Adds partitions to a table; each one's outcome in order: undefined when added, else why not
   * (BatchCreatePartition answers them as Errors; CreatePartition throws the first).
   */
  createPartitions(table: TableRecord, docs: Array<Doc & { Values: string[] }>): Array<CatalogError | undefined> {
    const keys = table.PartitionKeys?.length ?? 0;
    return this.db.transaction(() => {
      const count = (this.db.prepare('SELECT partitions FROM glue_tables WHERE db = ? AND name = ?').get(table.DatabaseName, table.Name) as { partitions: number }).partitions;
      let added = 0;
      const insert = this.db.prepare('INSERT OR IGNORE INTO glue_partitions (db, tbl, vals, data) VALUES (?, ?, ?, ?)');
      const out = docs.map((doc) => {
        if (doc.Values.length !== keys) {
          return new CatalogError('InvalidInputException', `The number of partition values (${doc.Values.length}) is not the number of partition keys of table ${table.Name} (${keys}).`);
        }
        if (count + added >= this.limits.maxPartitionsPerTable) {
          return new CatalogError('ResourceNumberLimitExceededException', `Table ${table.Name} already holds ${this.limits.maxPartitionsPerTable} partitions, the most allowed.`);
        }
        const rec: PartitionRecord = { ...doc, Values: [...doc.Values], DatabaseName: table.DatabaseName, TableName: table.Name, CreationTime: this.clock.now() };
        const r = insert.run(table.DatabaseName, table.Name, valuesKey(doc.Values), JSON.stringify(rec));
        if (r.changes === 0) return new CatalogError('AlreadyExistsException', 'Partition already exists.');
        added++;
        return undefined;
      });
      if (added > 0) this.db.prepare('UPDATE glue_tables SET partitions = partitions + ? WHERE db = ? AND name = ?').run(added, table.DatabaseName, table.Name);
      return out;
    })();
  }

  getPartition(table: TableRecord, values: readonly string[]): PartitionRecord | undefined {
    const row = this.db.prepare('SELECT data FROM glue_partitions WHERE db = ? AND tbl = ? AND vals = ?').get(table.DatabaseName, table.Name, valuesKey(values)) as
      | { data: string }
      | undefined;
    return row && (JSON.parse(row.data) as PartitionRecord);
  }

  /** Removes partitions; for each, whether it existed. */
  deletePartitions(table: TableRecord, list: ReadonlyArray<readonly string[]>): boolean[] {
    return this.db.transaction(() => {
      const del = this.db.prepare('DELETE FROM glue_partitions WHERE db = ? AND tbl = ? AND vals = ?');
      const out = list.map((values) => del.run(table.DatabaseName, table.Name, valuesKey(values)).changes > 0);
      const removed = out.filter(Boolean).length;
      if (removed > 0) this.db.prepare('UPDATE glue_tables SET partitions = partitions - ? WHERE db = ? AND name = ?').run(removed, table.DatabaseName, table.Name);
      return out;
    })();
  }

  /** Partitions after `afterKey` (a previous page's last valuesKey, '' from the start), in key order. */
  listPartitions(table: TableRecord, afterKey: string, limit: number): Array<{ key: string; partition: PartitionRecord }> {
    return (
      this.db.prepare('SELECT vals, data FROM glue_partitions WHERE db = ? AND tbl = ? AND vals > ? ORDER BY vals LIMIT ?').all(table.DatabaseName, table.Name, afterKey, limit) as Array<{
        vals: string;
        data: string;
      }>
    ).map((r) => ({ key: r.vals, partition: JSON.parse(r.data) as PartitionRecord }));
  }
}
