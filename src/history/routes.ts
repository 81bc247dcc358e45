// The history import API (a Pinstream extension under Pinpoint's /v1/apps/{id} prefix, like
// /eventstream/replay): POST /v1/apps/{id}/history-imports starts a job, GET lists the app's jobs,
// GET …/history-imports/{job-id} is one job's status. The CLI and the console use these routes.
//
// Authorization, in IAM terms a user can grant: creating a job is mobiletargeting:CreateImportJob
// on every project it writes to (the URL's and each --map destination), plus PutEvents on them with
// Replay (the events enter the ingest log as if sent); reading is GetImportJobs / GetImportJob on
// the app. The archive: with RoleArn, the caller needs iam:PassRole to pinpoint.amazonaws.com and
// the role (trusted by Pinpoint for this project) must allow s3:ListBucket and s3:GetObject, checked
// on every read while the job runs; without one, the caller's own s3:ListBucket on the bucket and
// s3:GetObject on the prefix are checked when the job is created. A folder on the server's disk
// (file:///…) is pinstream:ReadLocalFolder on arn:aws:pinstream:::local-folder/PATH — only the admin
// (or whoever the admin grants it) may read the server's files.

import { badRequest, notFound } from '../http/errors.js';
import { json, type ApiRequest } from '../http/request.js';
import { jsonBody, type Route } from '../http/restjson.js';
import type { Authorizer } from '../iam/authorizer.js';
import { PINPOINT_SERVICE_PRINCIPAL } from '../iam/roles.js';
import type { Apps } from '../pinpoint/apps.js';
import type { HistoryJobs } from './jobs.js';
import { parseSource, SourceError } from './source.js';

/** A create request's body limit. */
export const MAX_HISTORY_REQUEST_BYTES = 64 * 1024;
/** Source projects one import may map. */
export const MAX_MAP_ENTRIES = 100;

export const LOCAL_FOLDER_ACTION = 'pinstream:ReadLocalFolder';

export function historyRoutes(o: { apps: Apps; authorizer: Authorizer; jobs: HistoryJobs }): Route[] {
  const { apps, authorizer, jobs } = o;
  const allow = (req: ApiRequest, action: string, appId: string) => authorizer.authorize(req, `mobiletargeting:${action}`, apps.arn(appId));
  return [
    {
      method: 'POST',
      path: '/v1/apps/{application-id}/history-imports',
      maxBodyBytes: MAX_HISTORY_REQUEST_BYTES,
      handler: async (req, p) => {
        const appId = p['application-id'];
        allow(req, 'CreateImportJob', appId);
        apps.require(appId);
        const b = jsonBody(req, MAX_HISTORY_REQUEST_BYTES);
        const { Source, RoleArn, Map: map, Replay } = b;
        if (typeof Source !== 'string') throw badRequest('Source is required: s3://bucket/prefix/ or file:///absolute/folder/');
        if (RoleArn !== undefined && (typeof RoleArn !== 'string' || !/^arn:aws:iam::\d{12}:role\/[\w+=,.@/-]{1,512}$/.test(RoleArn))) {
          throw badRequest('RoleArn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)');
        }
        if (Replay !== undefined && typeof Replay !== 'boolean') throw badRequest('Replay must be a boolean');
        let mapping: Record<string, string>;
        if (map === undefined) mapping = { [appId]: appId };
        else {
          if (typeof map !== 'object' || map === null || Array.isArray(map)) throw badRequest('Map must be an object {sourceAppId: pinstreamAppId}');
          const entries = Object.entries(map as Record<string, unknown>);
          if (entries.length === 0 || entries.length > MAX_MAP_ENTRIES) throw badRequest(`Map must have 1 to ${MAX_MAP_ENTRIES} entries`);
          mapping = Object.create(null) as Record<string, string>;
          for (const [src, dest] of entries) {
            if (src === '' || typeof dest !== 'string' || dest === '') throw badRequest(`Map.${src}: a source app id maps to a Pinstream app id (a string)`);
            mapping[src] = dest;
          }
          mapping = { ...mapping };
        }
        const dests = [...new Set(Object.values(mapping))];
        for (const d of dests) {
          allow(req, 'CreateImportJob', d);
          if (Replay) allow(req, 'PutEvents', d);
        }
        for (const d of dests) apps.require(d);
        let source;
        try {
          source = parseSource(Source);
        } catch (e) {
          if (e instanceof SourceError) throw badRequest(e.message);
          throw e;
        }
        if (source.kind === 'folder') authorizer.authorize(req, LOCAL_FOLDER_ACTION, `arn:aws:pinstream:::local-folder${source.dir}`);
        else if (RoleArn) authorizer.passRole(req, RoleArn as string, PINPOINT_SERVICE_PRINCIPAL);
        else {
          authorizer.authorize(req, 's3:ListBucket', `arn:aws:s3:::${source.bucket}`);
          authorizer.authorize(req, 's3:GetObject', `arn:aws:s3:::${source.bucket}/${source.prefix}*`);
        }
        return json(201, await jobs.create({ appId, source: Source, roleArn: RoleArn as string | undefined, map: mapping, replay: Replay === true }));
      },
    },
    {
      method: 'GET',
      path: '/v1/apps/{application-id}/history-imports',
      handler: async (req, p) => {
        const appId = p['application-id'];
        allow(req, 'GetImportJobs', appId);
        apps.require(appId);
        return json(200, { Item: await jobs.list(appId) });
      },
    },
    {
      method: 'GET',
      path: '/v1/apps/{application-id}/history-imports/{job-id}',
      handler: async (req, p) => {
        const appId = p['application-id'];
        allow(req, 'GetImportJob', appId);
        apps.require(appId);
        const job = await jobs.get(appId, p['job-id']);
        if (!job) throw notFound(`history import ${p['job-id']} of app ${appId} not found`);
        return json(200, job);
      },
    },
  ];
}
