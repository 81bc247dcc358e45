// `pinstream query`'s catalog statements (src/catalog/ddl.ts) run as Glue API calls, SigV4-signed
// for `glue` like any AWS client's (so IAM decides, as for `aws glue …`), and their answers
// rendered like query results. A small awsJson 1.1 caller rather than @aws-sdk/client-glue: the
// CLI needs eight operations, and the SDK client is a test-only dependency.

import { SignatureV4 } from '@smithy/signature-v4';
import { Sha256 } from '@aws-crypto/sha256-js';
import { parseDdl, type DdlStatement } from '../catalog/ddl.js';
import type { Credentials } from './signed.js';

/** Athena's database when a statement names none. */
export const DEFAULT_DATABASE = 'default';
/** How long one catalog call may take before the command gives up. */
export const GLUE_CALL_TIMEOUT_MS = 30_000;

export class GlueCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

export interface GlueTarget {
  endpoint: string;
  region: string;
  credentials: Credentials;
}

/** One signed AWSGlue.<operation> call; GlueCallError with Glue's error type and message. */
export async function glueCall(target: GlueTarget, operation: string, input: object): Promise<any> {
  const url = new URL('/', target.endpoint);
  const body = JSON.stringify(input);
  const signer = new SignatureV4({ service: 'glue', region: target.region, credentials: target.credentials, sha256: Sha256 });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port) || undefined,
    path: '/',
    query: {},
    headers: { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AWSGlue.${operation}` },
    body,
  });
  const headers = { ...(signed.headers as Record<string, string>) };
  delete headers.host;
  const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(GLUE_CALL_TIMEOUT_MS) });
  const text = await res.text();
  let json: any = {};
  try {
    json = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new GlueCallError(`HTTP${res.status}`, text.slice(0, 200));
  }
  if (!res.ok) throw new GlueCallError(String(json.__type ?? `HTTP${res.status}`).replace(/^.*#/, ''), json.message ?? json.Message ?? '');
  return json;
}

/** A statement's answer as columns and rows (every value a string or null). */
export interface DdlResult {
  columns: string[];
  rows: Array<Array<string | null>>;
}

const none: DdlResult = { columns: [], rows: [] };

/** Parses and runs one catalog statement. */
export async function runCatalogStatement(target: GlueTarget, sql: string, database = DEFAULT_DATABASE): Promise<DdlResult> {
  return runDdl(target, parseDdl(sql), database);
}

async function pages(target: GlueTarget, operation: string, input: object, key: string): Promise<any[]> {
  const out: any[] = [];
  let token: string | undefined;
  do {
    const r = await glueCall(target, operation, { ...input, ...(token ? { NextToken: token } : {}) });
    out.push(...(r[key] ?? []));
    token = r.NextToken;
  } while (token);
  return out;
}

export async function runDdl(target: GlueTarget, s: DdlStatement, defaultDb: string): Promise<DdlResult> {
  const call = (op: string, input: object) => glueCall(target, op, input);
  const ignoring = async (code: string, p: Promise<unknown>) => {
    try {
      await p;
    } catch (e) {
      if (!(e instanceof GlueCallError && e.code === code)) throw e;
    }
  };
  switch (s.kind) {
    case 'create-database': {
      const p = call('CreateDatabase', { DatabaseInput: s.input });
      await (s.ifNotExists ? ignoring('AlreadyExistsException', p) : p);
      return none;
    }
    case 'create-table': {
      const p = call('CreateTable', { DatabaseName: s.database ?? defaultDb, TableInput: s.input });
      await (s.ifNotExists ? ignoring('AlreadyExistsException', p) : p);
      return none;
    }
    case 'drop-table': {
      const p = call('DeleteTable', { DatabaseName: s.database ?? defaultDb, Name: s.name });
      await (s.ifExists ? ignoring('EntityNotFoundException', p) : p);
      return none;
    }
    case 'drop-database': {
      if (!s.cascade) {
        // Hive's RESTRICT (the default): a database with tables is not dropped.
        const tables = await call('GetTables', { DatabaseName: s.name, MaxResults: 1 }).catch((e) => {
          if (s.ifExists && e instanceof GlueCallError && e.code === 'EntityNotFoundException') return { TableList: [] };
          throw e;
        });
        if ((tables.TableList ?? []).length > 0) throw new GlueCallError('InvalidInputException', `Database ${s.name} is not empty: drop its tables first, or DROP DATABASE ${s.name} CASCADE.`);
      }
      const p = call('DeleteDatabase', { Name: s.name });
      await (s.ifExists ? ignoring('EntityNotFoundException', p) : p);
      return none;
    }
    case 'add-partitions': {
      const database = s.database ?? defaultDb;
      const table = (await call('GetTable', { DatabaseName: database, Name: s.table })).Table;
      const keys: string[] = (table.PartitionKeys ?? []).map((k: { Name: string }) => k.Name.toLowerCase());
      const sd = table.StorageDescriptor ?? {};
      const inputs = s.partitions.map((p) => {
        const given = new Map(p.spec);
        const unknown = p.spec.map(([k]) => k).filter((k) => !keys.includes(k));
        if (unknown.length > 0 || given.size !== keys.length || p.spec.length !== keys.length) {
          throw new GlueCallError('InvalidInputException', `PARTITION (${p.spec.map(([k, v]) => `${k}='${v}'`).join(', ')}) must name each partition key of ${database}.${s.table} once: ${keys.join(', ') || 'it has none'}`);
        }
        const values = keys.map((k) => given.get(k)!);
        // Athena's default location: the table's, then key=value folders in key order.
        const base = String(sd.Location ?? '').replace(/\/?$/, '/');
        const location = p.location ?? `${base}${keys.map((k, i) => `${k}=${values[i]}`).join('/')}/`;
        return { Values: values, StorageDescriptor: { ...sd, Location: location } };
      });
      const r = await call('BatchCreatePartition', { DatabaseName: database, TableName: s.table, PartitionInputList: inputs });
      const errors = ((r.Errors ?? []) as Array<{ PartitionValues: string[]; ErrorDetail: { ErrorCode: string; ErrorMessage: string } }>).filter(
        (e) => !(s.ifNotExists && e.ErrorDetail.ErrorCode === 'AlreadyExistsException'),
      );
      if (errors.length > 0) {
        const e = errors[0];
        throw new GlueCallError(e.ErrorDetail.ErrorCode, `${e.ErrorDetail.ErrorMessage} (partition ${e.PartitionValues.join('/')})`);
      }
      return none;
    }
    case 'show-tables': {
      const input = { DatabaseName: s.database ?? defaultDb, ...(s.pattern ? { Expression: s.pattern } : {}) };
      const tables = await pages(target, 'GetTables', { ...input, AttributesToGet: ['NAME'] }, 'TableList');
      return { columns: ['tab_name'], rows: tables.map((t) => [t.Name]) };
    }
    case 'show-databases': {
      const dbs = await pages(target, 'GetDatabases', { AttributesToGet: ['NAME'] }, 'DatabaseList');
      return { columns: ['database_name'], rows: dbs.map((d) => [d.Name]) };
    }
    case 'describe': {
      const table = (await call('GetTable', { DatabaseName: s.database ?? defaultDb, Name: s.table })).Table;
      const row = (c: { Name: string; Type?: string; Comment?: string }) => [c.Name, c.Type ?? null, c.Comment ?? null];
      const columns = (table.StorageDescriptor?.Columns ?? []).map(row);
      const keys = (table.PartitionKeys ?? []).map(row);
      // As Hive and Athena print it: the columns (partition keys last), then the keys again under a heading.
      const rows = keys.length > 0 ? [...columns, ...keys, ['', null, null], ['# Partition Information', null, null], ['# col_name', 'data_type', 'comment'], ...keys] : columns;
      return { columns: ['col_name', 'data_type', 'comment'], rows };
    }
  }
}
