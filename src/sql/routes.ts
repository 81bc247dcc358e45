// POST /v1/query: Athena-style SQL over the Data Catalog (a Pinstream extension beside Pinpoint's
// /v1 routes; `pinstream query` calls it). The body borrows Athena StartQueryExecution's names —
// {QueryString, QueryExecutionContext: {Database}, ResultConfiguration: {OutputLocation}} — and
// the answer is the finished query: {QueryExecutionId, ResultSet: {Columns, Rows}, OutputLocation,
// Statistics}. Runs synchronously (a query is bounded by QUERY_TIMEOUT_MS); authorization is the
// engine's (src/sql/engine.ts), decided per caller by IAM.

import { ApiError, badRequest } from '../http/errors.js';
import { json, type ApiRequest } from '../http/request.js';
import { jsonBody, type Route } from '../http/restjson.js';
import type { Authorizer } from '../iam/authorizer.js';
import { runStatement, SqlError, type EngineDeps } from './engine.js';
import { MAX_QUERY_STRING_BYTES } from './presto.js';

/** The request body: the query string plus a little JSON around it. */
export const MAX_QUERY_REQUEST_BYTES = MAX_QUERY_STRING_BYTES * 2 + 4096;
export const QUERY_PATH = '/v1/query';
/** Athena's default database. */
export const DEFAULT_QUERY_DATABASE = 'default';

export function queryRoutes(o: { authorizer: Authorizer; engine: (req: ApiRequest) => EngineDeps }): Route[] {
  return [
    {
      method: 'POST',
      path: QUERY_PATH,
      maxBodyBytes: MAX_QUERY_REQUEST_BYTES,
      handler: async (req) => {
        const b = jsonBody(req, MAX_QUERY_REQUEST_BYTES);
        if (typeof b.QueryString !== 'string' || b.QueryString.trim() === '') throw badRequest('QueryString is required');
        const ctx = b.QueryExecutionContext as { Database?: unknown } | undefined;
        const database = ctx?.Database ?? DEFAULT_QUERY_DATABASE;
        if (typeof database !== 'string' || !/^[A-Za-z0-9_-]{1,255}$/.test(database)) throw badRequest('QueryExecutionContext.Database must be a database name');
        const output = (b.ResultConfiguration as { OutputLocation?: unknown } | undefined)?.OutputLocation;
        if (output !== undefined && (typeof output !== 'string' || !/^s3:\/\/[a-z0-9.-]{3,63}(\/.*)?$/.test(output))) throw badRequest('ResultConfiguration.OutputLocation must be s3://bucket/prefix/');
        try {
          const r = await runStatement(o.engine(req), { authorize: (action, resource) => o.authorizer.authorize(req, action, resource) }, { sql: b.QueryString, database, outputLocation: output as string | undefined });
          return json(200, {
            QueryExecutionId: r.queryExecutionId,
            ResultSet: { Columns: r.columns.map((c) => ({ Name: c.name, Type: c.type })), Rows: r.rows },
            ...(r.outputLocation ? { OutputLocation: r.outputLocation } : {}),
            Statistics: { ObjectsRead: r.statistics.objectsRead, PartitionsRead: r.statistics.partitionsRead },
          });
        } catch (e) {
          if (e instanceof SqlError) throw new ApiError('InvalidRequestException', 400, e.message);
          throw e;
        }
      },
    },
  ];
}
