// The AWS Glue Data Catalog API subset (awsJson 1.1, X-Amz-Target AWSGlue.*, signing name glue)
// on the shared port: databases, tables and partitions as pipelines and infrastructure tools
// (CloudFormation/Terraform, Firehose's SchemaConfiguration, Athena DDL) use them. Stored by
// src/catalog/store.ts; inputs are the model's, validated before a handler runs.
//
// Authorization, as AWS documents Data Catalog ARNs: `glue:<Operation>` on
//   - the catalog  arn:aws:glue:REGION:ACCOUNT:catalog              (every operation),
//   - the database arn:aws:glue:REGION:ACCOUNT:database/DB          (every operation naming one),
//   - the table    arn:aws:glue:REGION:ACCOUNT:table/DB/TABLE      (table and partition operations),
// each of which must be allowed (the first refused is the one the error names). DeleteDatabase
// also needs table/DB/* (it deletes the tables). GetDatabases and GetTables need the catalog (and
// the database) and then list only the databases / tables the caller may GetDatabases /
// GetTables on, so a listing tells no one of another tenant's entries. Names in ARNs are folded
// to lower case, as Glue stores them. The catalog id is the account id; another CatalogId is an
// EntityNotFoundException.
//
// Deviations, all refused with InvalidInputException rather than half-done: names containing '/'
// (they would make table ARNs ambiguous: db "a/b" table "c" vs db "a" table "b/c"), resource
// links (TargetDatabase, TargetTable), federated databases, Iceberg (OpenTableFormatInput),
// governed-table transactions (TransactionId) and QueryAsOfTime. UpdateDatabase cannot rename.

import { ServiceError, type JsonRpcService, type Operations } from '../http/awsjson.js';
import type { ApiRequest } from '../http/request.js';
import type { Authorizer } from '../iam/authorizer.js';
import { model } from '../models/generated/glue.js';
import type { Inputs } from '../models/generated/glue-inputs.js';
import { CatalogError, fold, type CatalogStore, type Doc, type TableRecord } from '../catalog/store.js';
import { compileNamePattern, compilePartitionExpression, ExpressionError } from '../catalog/expression.js';

export const GLUE_TARGET_PREFIX = model.metadata.targetPrefix!;
export const GLUE_SIGNING_NAME = model.metadata.signingName ?? model.metadata.endpointPrefix;
/**
 * The longest request accepted. Glue's own is not published; a BatchCreatePartition of 100
 * partitions, each with a few hundred columns and parameters, stays well under it.
 */
export const MAX_GLUE_REQUEST_BYTES = 10 * 1024 * 1024;
/** AWS's defaults when MaxResults is absent. */
export const DEFAULT_PAGE_SIZE = 100;

const err = (code: string, message: string) => new ServiceError(code, message);
const invalid = (m: string) => err('InvalidInputException', m);

export interface GlueDeps {
  catalog: CatalogStore;
  authorizer: Authorizer;
  region: string;
  accountId: string;
  /** The caller's ARN (a table's CreatedBy). */
  callerArn: (req: ApiRequest) => string;
}

/** Top-level timestamps of stored documents: epoch ms in the store, Dates on the wire. */
const TIMESTAMPS = ['CreateTime', 'UpdateTime', 'LastAccessTime', 'LastAnalyzedTime', 'CreationTime'];

function stored(doc: object): Doc {
  const out: Doc = {};
  for (const [k, v] of Object.entries(doc)) if (v !== undefined) out[k] = v instanceof Date ? v.getTime() : v;
  return out;
}

function wire(doc: Doc, extra: Doc = {}): Doc {
  const out: Doc = { ...doc };
  for (const k of TIMESTAMPS) if (typeof out[k] === 'number') out[k] = new Date(out[k] as number);
  return { ...out, ...extra };
}

/** A token is the last key a page read; anything else a caller sends is refused, not guessed at. */
const tokenOut = (key: string) => Buffer.from(JSON.stringify({ after: key })).toString('base64url');
function tokenIn(token: string | undefined): string {
  if (token === undefined || token === '') return '';
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { after?: unknown };
    if (typeof v.after === 'string') return v.after;
  } catch {
    // refused below
  }
  throw invalid('Invalid NextToken.');
}

function checkName(what: string, name: string): string {
  if (name.includes('/')) throw invalid(`${what} name ${name} contains '/', which Pinstream does not allow (it would make the ${what.toLowerCase()}'s ARN ambiguous).`);
  return fold(name);
}

export function glueService(d: GlueDeps): JsonRpcService {
  const { catalog, authorizer, region, accountId } = d;
  const catalogArn = (id: string) => `arn:aws:glue:${region}:${id}:catalog`;
  const databaseArn = (id: string, db: string) => `arn:aws:glue:${region}:${id}:database/${fold(db)}`;
  const tableArn = (id: string, db: string, t: string) => `arn:aws:glue:${region}:${id}:table/${fold(db)}/${fold(t)}`;
  const extra = () => ({ CatalogId: accountId });

  const ours = (catalogId: string | undefined) => {
    if (catalogId !== undefined && catalogId !== accountId) throw err('EntityNotFoundException', `Catalog ${catalogId} not found.`);
  };
  const catalogCall = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof CatalogError) throw err(e.code, e.message);
      if (e instanceof ExpressionError) throw invalid(e.message);
      throw e;
    }
  };
  /** catalogCall for the store's async writes and partition reads. */
  const catalogAwait = async <T>(f: () => Promise<T>): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      if (e instanceof CatalogError) throw err(e.code, e.message);
      if (e instanceof ExpressionError) throw invalid(e.message);
      throw e;
    }
  };
  const unsupported = (input: object, members: string[], what: string) => {
    for (const m of members) if ((input as Doc)[m] !== undefined) throw invalid(`${m} is not supported by Pinstream (${what}).`);
  };

  const databaseShape = (rec: Doc) => wire(rec, extra());
  const tableShape = (rec: Doc) => wire(rec, { ...extra(), IsRegisteredWithLakeFormation: false });
  const partitionShape = (rec: Doc) => wire(rec, extra());

  const tableInput = (input: Inputs['CreateTable']): Inputs['CreateTable']['TableInput'] & object => {
    unsupported(input, ['OpenTableFormatInput', 'TransactionId', 'PartitionIndexes'], 'Iceberg tables, governed-table transactions and partition indexes');
    const t = input.TableInput;
    if (!t) throw invalid('TableInput is required.');
    unsupported(t, ['TargetTable', 'ViewDefinition'], 'resource links and multi-dialect views');
    if (input.Name !== undefined && fold(input.Name) !== fold(t.Name)) throw invalid('Name and TableInput.Name must be the same table.');
    return t;
  };

  /** Reads up to `max` matching entries, scanning at most the per-call bound; the token resumes after the last one read. */
  async function page<T>(read: (after: string, n: number) => Array<{ key: string; item: T }> | Promise<Array<{ key: string; item: T }>>, after: string, max: number, keep: (item: T) => boolean) {
    const out: T[] = [];
    let scanned = 0;
    let last = after;
    const batch = Math.min(1000, catalog.limits.maxScannedPerCall);
    for (;;) {
      const rows = await read(last, Math.min(batch, catalog.limits.maxScannedPerCall - scanned));
      for (const r of rows) {
        scanned++;
        last = r.key;
        if (keep(r.item)) out.push(r.item);
        // A full page names a next one only when something follows (so the last page has no token).
        if (out.length === max) return { items: out, next: (await read(last, 1)).length > 0 ? tokenOut(last) : undefined };
      }
      if (rows.length === 0 || (rows.length < batch && scanned < catalog.limits.maxScannedPerCall)) return { items: out, next: undefined };
      if (scanned >= catalog.limits.maxScannedPerCall) return { items: out, next: tokenOut(last) };
    }
  }

  const operations: Operations<Inputs> = {
    async CreateDatabase(input) {
      ours(input.CatalogId);
      const db = input.DatabaseInput;
      unsupported(db, ['TargetDatabase', 'FederatedDatabase'], 'resource links and federated databases');
      checkName('Database', db.Name);
      await catalogAwait(() => catalog.createDatabase(stored(db) as Doc & { Name: string }));
      return {};
    },
    GetDatabase(input) {
      ours(input.CatalogId);
      return { Database: databaseShape(catalogCall(() => catalog.requireDatabase(input.Name))) };
    },
    async UpdateDatabase(input) {
      ours(input.CatalogId);
      const db = input.DatabaseInput;
      unsupported(db, ['TargetDatabase', 'FederatedDatabase'], 'resource links and federated databases');
      catalogCall(() => catalog.requireDatabase(input.Name));
      if (fold(db.Name) !== fold(input.Name)) throw invalid('Renaming a database is not supported: DatabaseInput.Name must be the database named by Name.');
      await catalogAwait(() => catalog.updateDatabase(input.Name, stored(db)));
      return {};
    },
    async DeleteDatabase(input) {
      ours(input.CatalogId);
      await catalogAwait(() => catalog.deleteDatabase(input.Name));
      return {};
    },
    async GetDatabases(input, req) {
      ours(input.CatalogId);
      const max = input.MaxResults ?? DEFAULT_PAGE_SIZE;
      // Databases shared from other accounts: there are none.
      if (input.ResourceShareType === 'FOREIGN') return { DatabaseList: [] };
      const r = await page(
        (after, n) => catalog.listDatabases(after, n).map((x) => ({ key: x.Name, item: x })),
        tokenIn(input.NextToken),
        max,
        (x) => authorizer.allowed(req, 'glue:GetDatabases', databaseArn(accountId, x.Name)),
      );
      const only = input.AttributesToGet;
      return {
        // AttributesToGet: NAME is always answered; the others name resource-link fields, never set here.
        DatabaseList: r.items.map((x) => (only ? { Name: x.Name } : databaseShape(x))),
        NextToken: r.next,
      };
    },
    async CreateTable(input, req) {
      ours(input.CatalogId);
      const t = tableInput(input);
      checkName('Table', t.Name);
      await catalogAwait(() => catalog.createTable(input.DatabaseName, { ...stored(t), Name: t.Name, CreatedBy: d.callerArn(req) }));
      return {};
    },
    GetTable(input) {
      ours(input.CatalogId);
      unsupported(input, ['TransactionId', 'QueryAsOfTime'], 'governed tables');
      return { Table: tableShape(catalogCall(() => catalog.requireTable(input.DatabaseName, input.Name))) };
    },
    async UpdateTable(input) {
      ours(input.CatalogId);
      const t = tableInput(input as Inputs['CreateTable']);
      await catalogAwait(() => catalog.updateTable(input.DatabaseName, stored(t) as Doc & { Name: string }));
      return {};
    },
    async DeleteTable(input) {
      ours(input.CatalogId);
      unsupported(input, ['TransactionId'], 'governed tables');
      await catalogAwait(() => catalog.deleteTable(input.DatabaseName, input.Name));
      return {};
    },
    async GetTables(input, req) {
      ours(input.CatalogId);
      unsupported(input, ['TransactionId', 'QueryAsOfTime'], 'governed tables');
      const db = catalogCall(() => catalog.requireDatabase(input.DatabaseName)).Name;
      const match = input.Expression ? catalogCall(() => compileNamePattern(input.Expression!)) : () => true;
      const r = await page(
        (after, n) => catalog.listTables(db, after, n).map((x) => ({ key: x.Name, item: x })),
        tokenIn(input.NextToken),
        input.MaxResults ?? DEFAULT_PAGE_SIZE,
        (x) => match(x.Name) && authorizer.allowed(req, 'glue:GetTables', tableArn(accountId, db, x.Name)),
      );
      const only = input.AttributesToGet;
      const shape = (x: TableRecord) => {
        if (!only) return tableShape(x);
        const full = tableShape(x);
        const out: Doc = { Name: x.Name };
        if (only.includes('TABLE_TYPE')) out.TableType = full.TableType;
        return out;
      };
      return { TableList: r.items.map(shape), NextToken: r.next };
    },
    async CreatePartition(input) {
      ours(input.CatalogId);
      const table = catalogCall(() => catalog.requireTable(input.DatabaseName, input.TableName));
      const [e] = await catalogAwait(() => catalog.createPartitions(table, [partitionDoc(input.PartitionInput)]));
      if (e) throw err(e.code, e.message);
      return {};
    },
    async BatchCreatePartition(input) {
      ours(input.CatalogId);
      const table = catalogCall(() => catalog.requireTable(input.DatabaseName, input.TableName));
      const docs = input.PartitionInputList.map(partitionDoc);
      const outcome = await catalogAwait(() => catalog.createPartitions(table, docs));
      const errors = outcome
        .map((e, i) => e && { PartitionValues: docs[i].Values, ErrorDetail: { ErrorCode: e.code, ErrorMessage: e.message } })
        .filter((x) => x !== undefined);
      return errors.length > 0 ? { Errors: errors } : {};
    },
    async GetPartition(input) {
      ours(input.CatalogId);
      const table = catalogCall(() => catalog.requireTable(input.DatabaseName, input.TableName));
      const p = await catalog.getPartition(table, input.PartitionValues);
      if (!p) throw err('EntityNotFoundException', 'Cannot find partition.');
      return { Partition: partitionShape(p) };
    },
    async DeletePartition(input) {
      ours(input.CatalogId);
      const table = catalogCall(() => catalog.requireTable(input.DatabaseName, input.TableName));
      const [found] = await catalog.deletePartitions(table, [input.PartitionValues]);
      if (!found) throw err('EntityNotFoundException', 'Cannot find partition.');
      return {};
    },
    async BatchDeletePartition(input) {
      ours(input.CatalogId);
      const table = catalogCall(() => catalog.requireTable(input.DatabaseName, input.TableName));
      const lists = input.PartitionsToDelete.map((p) => p.Values);
      const found = await catalog.deletePartitions(table, lists);
      const errors = lists
        .map((values, i) => (found[i] ? undefined : { PartitionValues: values, ErrorDetail: { ErrorCode: 'EntityNotFoundException', ErrorMessage: 'Cannot find partition.' } }))
        .filter((x) => x !== undefined);
      return errors.length > 0 ? { Errors: errors } : {};
    },
    async GetPartitions(input) {
      ours(input.CatalogId);
      unsupported(input, ['TransactionId', 'QueryAsOfTime', 'Segment'], 'governed tables and segmented reads');
      const table = catalogCall(() => catalog.requireTable(input.DatabaseName, input.TableName));
      const keys = (table.PartitionKeys ?? []).map((k) => ({ name: k.Name, type: k.Type ?? 'string' }));
      const filter = input.Expression ? catalogCall(() => compilePartitionExpression(input.Expression!, keys)) : () => true;
      const r = await page(
        async (after, n) => (await catalog.listPartitions(table, after, n)).map((x) => ({ key: x.key, item: x.partition })),
        tokenIn(input.NextToken),
        input.MaxResults ?? DEFAULT_PAGE_SIZE,
        (p) => filter(p.Values),
      );
      const shape = (p: Doc) => {
        const out = partitionShape(p);
        if (input.ExcludeColumnSchema && out.StorageDescriptor) out.StorageDescriptor = { ...(out.StorageDescriptor as Doc), Columns: undefined };
        return out;
      };
      return { Partitions: r.items.map(shape), NextToken: r.next };
    },
  };

  function partitionDoc(p: Inputs['CreatePartition']['PartitionInput']): Doc & { Values: string[] } {
    if (!p.Values) throw invalid('PartitionInput.Values is required.');
    return stored(p) as Doc & { Values: string[] };
  }

  return {
    targetPrefix: GLUE_TARGET_PREFIX,
    signingServices: [GLUE_SIGNING_NAME],
    maxRequestBytes: MAX_GLUE_REQUEST_BYTES,
    model,
    operations,
    authorize(op, input, req) {
      const action = `glue:${op}`;
      const id = typeof input.CatalogId === 'string' ? input.CatalogId : accountId;
      const s = (v: unknown) => (typeof v === 'string' ? v : '');
      const arns = [catalogArn(id)];
      switch (op) {
        case 'GetDatabases':
          break;
        case 'CreateDatabase':
        case 'UpdateDatabase': {
          const di = input.DatabaseInput as { Name?: unknown } | undefined;
          arns.push(databaseArn(id, op === 'CreateDatabase' ? s(di?.Name) : s(input.Name)));
          break;
        }
        case 'GetDatabase':
          arns.push(databaseArn(id, s(input.Name)));
          break;
        case 'DeleteDatabase':
          arns.push(databaseArn(id, s(input.Name)), tableArn(id, s(input.Name), '*'));
          break;
        case 'GetTables':
          arns.push(databaseArn(id, s(input.DatabaseName)));
          break;
        case 'CreateTable':
        case 'UpdateTable': {
          const ti = input.TableInput as { Name?: unknown } | undefined;
          const name = s(ti?.Name) || s(input.Name);
          arns.push(databaseArn(id, s(input.DatabaseName)), tableArn(id, s(input.DatabaseName), name));
          break;
        }
        case 'GetTable':
        case 'DeleteTable':
          arns.push(databaseArn(id, s(input.DatabaseName)), tableArn(id, s(input.DatabaseName), s(input.Name)));
          break;
        default:
          // The partition operations: the table they belong to.
          arns.push(databaseArn(id, s(input.DatabaseName)), tableArn(id, s(input.DatabaseName), s(input.TableName)));
      }
      for (const arn of arns) authorizer.authorize(req, action, arn);
    },
  };
}
