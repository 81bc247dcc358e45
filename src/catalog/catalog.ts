// What the rest of Pinstream reads of the Data Catalog (Firehose's schema-driven Parquet/ORC
// conversion, the SQL engine): a table's columns with parsed Hive types, its partition keys,
// location, storage format and SerDe, and its partitions. Read-only and in-process (the Glue API
// in src/glue/api.ts is the way to change the catalog); names are folded as Glue folds them.
// Also the storage formats as Athena's DDL writes them into Glue (STORED AS PARQUET / ORC /
// TEXTFILE), shared with the DDL runner so a DDL table and an SDK-created one read alike.

import { CatalogError, fold, tableNotFound, type CatalogStore, type PartitionRecord, type TableRecord } from './store.js';
import { HiveTypeError, parseHiveType, type HiveType } from './hive-types.js';

export { CatalogError } from './store.js';

export interface StorageFormat {
  inputFormat: string;
  outputFormat: string;
  serde: string;
}

/** Athena's `STORED AS` formats, as it writes them into a table's StorageDescriptor. */
export const STORAGE_FORMATS: Record<'PARQUET' | 'ORC' | 'TEXTFILE', StorageFormat> = {
  PARQUET: {
    inputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat',
    outputFormat: 'org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat',
    serde: 'org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe',
  },
  ORC: {
    inputFormat: 'org.apache.hadoop.hive.ql.io.orc.OrcInputFormat',
    outputFormat: 'org.apache.hadoop.hive.ql.io.orc.OrcOutputFormat',
    serde: 'org.apache.hadoop.hive.ql.io.orc.OrcSerde',
  },
  TEXTFILE: {
    inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
    outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
    serde: 'org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe',
  },
};

/** The JSON SerDes Firehose and Athena read records with. */
export const OPENX_JSON_SERDE = 'org.openx.data.jsonserde.JsonSerDe';
export const HIVE_JSON_SERDE = 'org.apache.hive.hcatalog.data.JsonSerDe';

export interface CatalogColumn {
  name: string;
  /** The type as stored. */
  type: string;
  hive: HiveType;
  comment?: string;
  parameters: Record<string, string>;
}

export interface CatalogTable {
  database: string;
  name: string;
  tableType?: string;
  columns: CatalogColumn[];
  partitionKeys: CatalogColumn[];
  location?: string;
  inputFormat?: string;
  outputFormat?: string;
  /** PARQUET / ORC / TEXTFILE when the formats are one of Athena's, else undefined. */
  storedAs?: keyof typeof STORAGE_FORMATS;
  serde: { library?: string; parameters: Record<string, string> };
  parameters: Record<string, string>;
  /** Increases with every UpdateTable. */
  versionId: string;
}

export interface CatalogPartition {
  values: string[];
  location?: string;
  parameters: Record<string, string>;
}

/** Partitions read per query while iterating a table's partitions. */
export const PARTITION_READ_BATCH = 1000;

export class Catalog {
  constructor(private store: CatalogStore) {}

  /**
   * The table `db.name`; CatalogError EntityNotFoundException when the database or the table is
   * missing, InvalidInputException when a column's type is not a Hive type (naming the column).
   */
  getTable(db: string, name: string): CatalogTable {
    return toCatalogTable(this.store.requireTable(db, name));
  }

  /** Whether `db.name` exists. */
  hasTable(db: string, name: string): boolean {
    return this.store.getTable(db, name) !== undefined;
  }

  /** The table's partitions in key order, read in batches (a table may hold millions). */
  async *partitions(db: string, name: string): AsyncGenerator<CatalogPartition> {
    const t = this.store.getTable(db, name);
    if (!t) throw tableNotFound(fold(name));
    let after = '';
    for (;;) {
      const page = await this.store.listPartitions(t, after, PARTITION_READ_BATCH);
      for (const p of page) yield toCatalogPartition(p.partition);
      if (page.length < PARTITION_READ_BATCH) return;
      after = page[page.length - 1].key;
    }
  }
}

type ColumnDoc = { Name: string; Type?: string; Comment?: string; Parameters?: Record<string, string> };

function column(table: string, c: ColumnDoc): CatalogColumn {
  const type = c.Type ?? '';
  let hive: HiveType;
  try {
    hive = parseHiveType(type);
  } catch (e) {
    if (!(e instanceof HiveTypeError)) throw e;
    throw new CatalogError('InvalidInputException', `Column ${c.Name} of table ${table} has the type '${type}', which is not a Hive type: ${e.message}`);
  }
  return { name: c.Name, type, hive, comment: c.Comment, parameters: c.Parameters ?? {} };
}

export function toCatalogTable(t: TableRecord): CatalogTable {
  const sd = (t.StorageDescriptor ?? {}) as {
    Columns?: ColumnDoc[];
    Location?: string;
    InputFormat?: string;
    OutputFormat?: string;
    SerdeInfo?: { SerializationLibrary?: string; Parameters?: Record<string, string> };
  };
  const qualified = `${t.DatabaseName}.${t.Name}`;
  const storedAs = (Object.keys(STORAGE_FORMATS) as Array<keyof typeof STORAGE_FORMATS>).find(
    (k) => STORAGE_FORMATS[k].inputFormat === sd.InputFormat && STORAGE_FORMATS[k].outputFormat === sd.OutputFormat,
  );
  return {
    database: t.DatabaseName,
    name: t.Name,
    tableType: t.TableType as string | undefined,
    columns: (sd.Columns ?? []).map((c) => column(qualified, c)),
    partitionKeys: (t.PartitionKeys ?? []).map((c) => column(qualified, c)),
    location: sd.Location,
    inputFormat: sd.InputFormat,
    outputFormat: sd.OutputFormat,
    storedAs,
    serde: { library: sd.SerdeInfo?.SerializationLibrary, parameters: sd.SerdeInfo?.Parameters ?? {} },
    parameters: (t.Parameters as Record<string, string> | undefined) ?? {},
    versionId: t.VersionId,
  };
}

function toCatalogPartition(p: PartitionRecord): CatalogPartition {
  const sd = (p.StorageDescriptor ?? {}) as { Location?: string };
  return { values: p.Values, location: sd.Location, parameters: (p.Parameters as Record<string, string> | undefined) ?? {} };
}
