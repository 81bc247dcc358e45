// The Pinpoint routes of endpoint import and export jobs (CreateImportJob, GetImportJob,
// GetImportJobs, CreateExportJob, GetExportJob, GetExportJobs): model-validated input, the
// caller's authorization on the project, and what a job's definition must satisfy before it is
// accepted. Running the job is jobs.ts's.
//
// Pinstream has no segments, so what only makes sense with one is refused, not silently dropped:
// DefineSegment true, SegmentId (importing into an existing segment) and RegisterEndpoints false
// (a job that would register nothing) are BadRequestException saying so. SegmentName alone is kept
// in the job's Definition. For the role, AWS-like checks happen at once: a well-formed role ARN of
// this account, iam:PassRole for the caller, and a role Pinpoint can assume for the project;
// whether the role may read or write the bucket is found when the job runs (the job FAILS naming
// the action and the object), as S3 is only asked then.

import { badRequest } from '../../http/errors.js';
import { json, type ApiRequest } from '../../http/request.js';
import type { Route } from '../../http/restjson.js';
import type { Inputs } from '../../models/generated/pinpoint-inputs.js';
import type { Authorizer } from '../../iam/authorizer.js';
import { PINPOINT_SERVICE_PRINCIPAL } from '../../iam/roles.js';
import type { Apps } from '../apps.js';
import { DEFAULT_JOBS_PAGE_SIZE, MAX_JOBS_PAGE_SIZE, parseS3Url, type EndpointJobs, type ImportDefinition } from './jobs.js';

export interface JobRouteDeps {
  jobs: EndpointJobs;
  apps: Apps;
  authorizer: Authorizer;
  accountId: string;
  input: <K extends keyof Inputs>(operation: K, req: ApiRequest, labels: Record<string, string>, payload?: unknown) => Inputs[K];
  body: (req: ApiRequest) => Record<string, unknown>;
  /** Why Pinpoint cannot assume the role for the project (missing, or its trust), else undefined. */
  roleProblem: (roleArn: string, appId: string) => string | undefined;
}

const ROLE_ARN = /^arn:aws:iam::(\d{12}):role\/(?:[\x21-\x7e]*\/)?[\w+=,.@-]{1,64}$/;

export function jobRoutes(d: JobRouteDeps): Route[] {
  const allow = (req: ApiRequest, action: string, appId: string) => d.authorizer.authorize(req, `mobiletargeting:${action}`, d.apps.arn(appId));
  const checkRole = (req: ApiRequest, roleArn: string, appId: string) => {
    const m = ROLE_ARN.exec(roleArn);
    if (!m) throw badRequest(`RoleArn "${roleArn.slice(0, 200)}" is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME)`);
    if (m[1] !== d.accountId) throw badRequest(`RoleArn ${roleArn} belongs to account ${m[1]}, not to this account (${d.accountId})`);
    // Naming a role Pinpoint will assume needs iam:PassRole on it, before the role is looked up.
    d.authorizer.passRole(req, roleArn, PINPOINT_SERVICE_PRINCIPAL);
    const problem = d.roleProblem(roleArn, appId);
    if (problem) throw badRequest(`RoleArn ${roleArn} cannot be used: ${problem}`);
  };
  const list = (req: ApiRequest, appId: string, type: 'IMPORT' | 'EXPORT') => {
    const raw = req.query.get('page-size');
    let size = DEFAULT_JOBS_PAGE_SIZE;
    if (raw !== null && raw !== '') {
      size = Number(raw);
      if (!Number.isInteger(size) || size < 1 || size > MAX_JOBS_PAGE_SIZE) throw badRequest(`page-size must be an integer from 1 to ${MAX_JOBS_PAGE_SIZE}; got "${raw.slice(0, 40)}"`);
    }
    return d.jobs.list(appId, type, size, req.query.get('token') ?? undefined);
  };

  return [
    {
      method: 'POST',
      path: '/v1/apps/{application-id}/jobs/import',
      handler: async (req, p) => {
        const appId = p['application-id'];
        const r = d.input('CreateImportJob', req, p, d.body(req)).ImportJobRequest;
        allow(req, 'CreateImportJob', appId);
        d.apps.require(appId);
        parseS3Url(r.S3Url, 'S3Url');
        if (r.Format !== 'JSON' && r.Format !== 'CSV') throw badRequest(`Format must be JSON or CSV; got "${String(r.Format).slice(0, 40)}"`);
        if (r.DefineSegment === true) {
          throw badRequest('DefineSegment: Pinstream has no segments, so an import job cannot define one; set DefineSegment to false (the endpoints are imported either way)');
        }
        if (r.SegmentId !== undefined) throw badRequest('SegmentId: Pinstream has no segments to import into; leave SegmentId out');
        if (r.RegisterEndpoints === false) {
          throw badRequest('RegisterEndpoints false would import nothing: without segments, registering the endpoints is all an import job does; leave it out or set it to true');
        }
        checkRole(req, r.RoleArn, appId);
        const def: ImportDefinition = { S3Url: r.S3Url, RoleArn: r.RoleArn, Format: r.Format, RegisterEndpoints: true, DefineSegment: false };
        if (r.SegmentName !== undefined) def.SegmentName = r.SegmentName;
        if (r.ExternalId !== undefined) def.ExternalId = r.ExternalId;
        return json(201, await d.jobs.createImport(appId, def));
      },
    },
    {
      method: 'POST',
      path: '/v1/apps/{application-id}/jobs/export',
      handler: async (req, p) => {
        const appId = p['application-id'];
        const r = d.input('CreateExportJob', req, p, d.body(req)).ExportJobRequest;
        allow(req, 'CreateExportJob', appId);
        d.apps.require(appId);
        parseS3Url(r.S3UrlPrefix, 'S3UrlPrefix');
        if (r.SegmentId !== undefined || r.SegmentVersion !== undefined) {
          throw badRequest('SegmentId: Pinstream has no segments; leave SegmentId and SegmentVersion out to export every endpoint of the project');
        }
        checkRole(req, r.RoleArn, appId);
        return json(202, await d.jobs.createExport(appId, { S3UrlPrefix: r.S3UrlPrefix, RoleArn: r.RoleArn }));
      },
    },
    // GetImportJobs/GetImportJob and GetExportJobs/GetExportJob: the same reads of either kind.
    ...(['Import', 'Export'] as const).flatMap((Kind): Route[] => {
      const kind = Kind.toUpperCase() as 'IMPORT' | 'EXPORT';
      const path = `/v1/apps/{application-id}/jobs/${Kind.toLowerCase()}`;
      return [
        {
          method: 'GET',
          path,
          handler: async (req, p) => {
            const appId = p['application-id'];
            allow(req, `Get${Kind}Jobs`, appId);
            d.apps.require(appId);
            return json(200, await list(req, appId, kind));
          },
        },
        {
          method: 'GET',
          path: `${path}/{job-id}`,
          handler: async (req, p) => {
            const appId = p['application-id'];
            allow(req, `Get${Kind}Job`, appId);
            d.apps.require(appId);
            return json(200, await d.jobs.get(appId, kind, p['job-id']));
          },
        },
      ];
    }),
  ];
}
