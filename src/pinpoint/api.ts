// The Pinpoint REST API (restJson1, signing name "mobiletargeting"): the route table with each
// operation's method, path and success status (reference/pinpoint.md §1.3), and the glue from wire
// shapes to the apps, endpoints and events services. Each modelled operation's input (URI labels,
// query string and JSON body) is validated against Pinpoint's model before authorization: a
// wrong type or a missing required member is a BadRequestException naming the member's path
// from the body's root; handlers receive the typed input and keep only Pinpoint's business rules.
// The model's other operations (segments, campaigns, channels, templates, journeys, ...) are
// answered by the router as unsupported.

import type { Protocol } from '../http/dispatch.js';
import { badRequest } from '../http/errors.js';
import { json, type ApiRequest, type ApiResponse } from '../http/request.js';
import { jsonBody, restJsonError, RestJsonRouter, type Route } from '../http/restjson.js';
import type { Json } from '../http/shape.js';
import { model as pinpointModel } from '../models/generated/pinpoint.js';
import type { Inputs } from '../models/generated/pinpoint-inputs.js';
import { ModelValidator } from '../models/validate.js';
import { PINPOINT_MODEL_OVERRIDES } from './ingest-prepare.js';
import { RestDecoder } from '../models/rest-input.js';
import type { Authorizer } from '../iam/authorizer.js';
import { destinationActions, PINPOINT_SERVICE_PRINCIPAL } from '../iam/roles.js';
import { checkTags, type Apps } from './apps.js';
import { checkEndpointId, validateEndpointInput, type Endpoints } from './endpoints.js';
import type { EventIngest } from './events.js';
import type { CognitoCaller } from './record.js';
import { eventStreamShape, type EventStreams } from './eventstream.js';
import { analyticsRoutes } from './kpi-routes.js';
import { jobRoutes } from './jobs/routes.js';
import type { EndpointJobs } from './jobs/jobs.js';
import type { Analytics } from '../analytics/types.js';
import { systemClock, type Clock } from '../clock.js';
import {
  DEFAULT_APPS_PAGE_SIZE,
  MAX_APPS_PAGE_SIZE,
  MAX_ENDPOINTS_PER_BATCH,
  MAX_ENDPOINT_BATCH_REQUEST_BYTES,
  MAX_PUT_EVENTS_REQUEST_BYTES,
  MAX_REQUEST_BYTES,
} from './limits.js';

export const PINPOINT_SIGNING_NAME = 'mobiletargeting';

/** Deliberate deviations from Pinpoint's model (defined beside PutEvents' event checks). */
export { PINPOINT_MODEL_OVERRIDES };

export interface PinpointServices {
  apps: Apps;
  endpoints: Endpoints;
  events: EventIngest;
  eventStreams: EventStreams;
  authorizer: Authorizer;
  /** The IAM ARN of the request's caller (EventStream.LastUpdatedBy). */
  callerArn: (req: ApiRequest) => string;
  /** Delivery health of an app's event stream, given its checkpoint saved in the Store. */
  deliveryHealth: (appId: string, savedCheckpoint: number | undefined) => object;
  /** The KPI API and console analytics routes exist only when an event store is attached. */
  analytics?: Analytics;
  /** "Now" for KPI date-range rules and dashboard defaults. */
  clock?: Clock;
  /** The caller's Cognito identity and pool, when its credentials came from GetCredentialsForIdentity. */
  callerCognito?: (req: ApiRequest) => CognitoCaller | undefined;
  /** Endpoint import and export jobs (src/pinpoint/jobs/), with the checks their roles need. */
  jobs?: { jobs: EndpointJobs; accountId: string; roleProblem: (roleArn: string, appId: string) => string | undefined };
  /** Pinstream extension: a guest identity pool for a project (src/cognito/guest.ts). */
  guestAccess?: (req: ApiRequest, appId: string) => unknown;
  /** Pinstream extension routes owned by other modules (history imports: src/history/routes.ts). */
  extraRoutes?: Route[];
}

/** The route table is listed (`METHOD /path/{label}`) so the isolation suite can tell that every route has a refusal test. */
export function pinpointProtocol(s: PinpointServices): Protocol & { routes: string[] } {
  const { apps, endpoints, events, eventStreams, authorizer } = s;
  const allow = (req: ApiRequest, action: string, appId?: string) =>
    authorizer.authorize(req, `mobiletargeting:${action}`, appId ? apps.arn(appId) : apps.collectionArn());
  const body = (req: ApiRequest) => jsonBody(req, MAX_REQUEST_BYTES);
  const decoder = new RestDecoder(new ModelValidator(pinpointModel, PINPOINT_MODEL_OVERRIDES, { paths: 'rest' }));
  /** The operation's validated input; `payload` is its parsed JSON body. */
  const input = <K extends keyof Inputs>(operation: K, req: ApiRequest, labels: Record<string, string>, payload: unknown = {}): Inputs[K] => {
    const r = decoder.decode<Inputs[K]>(operation, { labels, query: req.query, headers: req.headers, body: payload });
    if (!r.ok) throw badRequest(r.error.message);
    return r.value;
  };
  const accepted = (req: ApiRequest) => json(202, { Message: 'Accepted', RequestID: req.requestId });

  const routes: Route[] = [
    {
      method: 'POST',
      path: '/v1/apps',
      handler: async (req) => {
        const { Name, tags } = input('CreateApp', req, {}, body(req)).CreateApplicationRequest;
        allow(req, 'CreateApp');
        if (Name === '') throw badRequest('Name must not be empty');
        return json(201, await apps.create(Name, checkTags(tags, 'tags')));
      },
    },
    {
      method: 'GET',
      path: '/v1/apps',
      handler: (req) => {
        allow(req, 'GetApps');
        const size = pageSize(req.query.get('page-size'));
        return json(200, apps.list(size, req.query.get('token') ?? undefined));
      },
    },
    {
      method: 'GET',
      path: '/v1/apps/{application-id}',
      handler: (req, p) => {
        allow(req, 'GetApp', p['application-id']);
        return json(200, apps.require(p['application-id']));
      },
    },
    {
      method: 'DELETE',
      path: '/v1/apps/{application-id}',
      handler: async (req, p) => {
        const id = p['application-id'];
        allow(req, 'DeleteApp', id);
        apps.require(id);
        if (eventStreams.get(id)) await eventStreams.delete(id);
        const app = await apps.delete(id);
        await endpoints.purgeApp(id);
        return json(200, app);
      },
    },
    {
      method: 'GET',
      path: '/v1/apps/{application-id}/settings',
      handler: (req, p) => {
        allow(req, 'GetApplicationSettings', p['application-id']);
        return json(200, apps.getSettings(p['application-id']));
      },
    },
    {
      method: 'PUT',
      path: '/v1/apps/{application-id}/settings',
      handler: async (req, p) => {
        const settings = input('UpdateApplicationSettings', req, p, body(req)).WriteApplicationSettingsRequest;
        allow(req, 'UpdateApplicationSettings', p['application-id']);
        return json(200, await apps.updateSettings(p['application-id'], settings));
      },
    },
    {
      method: 'PUT',
      path: '/v1/apps/{application-id}/endpoints/{endpoint-id}',
      handler: async (req, p) => {
        const appId = p['application-id'];
        const endpoint = input('UpdateEndpoint', req, p, body(req)).EndpointRequest as Json;
        allow(req, 'UpdateEndpoint', appId);
        apps.require(appId);
        const id = p['endpoint-id'];
        checkEndpointId(id);
        validateEndpointInput(endpoint, 'EndpointRequest', req.body.length);
        await endpoints.upsert(appId, id, endpoint);
        return accepted(req);
      },
    },
    {
      method: 'PUT',
      path: '/v1/apps/{application-id}/endpoints',
      maxBodyBytes: MAX_ENDPOINT_BATCH_REQUEST_BYTES,
      handler: async (req, p) => {
        const appId = p['application-id'];
        const { Item } = input('UpdateEndpointsBatch', req, p, jsonBody(req, MAX_ENDPOINT_BATCH_REQUEST_BYTES, 'UpdateEndpointsBatch request')).EndpointBatchRequest;
        allow(req, 'UpdateEndpointsBatch', appId);
        apps.require(appId);
        if (Item.length > MAX_ENDPOINTS_PER_BATCH) {
          throw badRequest(`Item has ${Item.length} endpoints; the maximum is ${MAX_ENDPOINTS_PER_BATCH} per UpdateEndpointsBatch request`);
        }
        const items = Item.map((item, i) => {
          // The model leaves Id optional; a batch item without one has nothing to update.
          if (item === null) throw badRequest(`Item[${i}] must be an EndpointBatchItem object`);
          const id = item.Id;
          if (id === undefined || id === '') throw badRequest(`Item[${i}].Id is required`);
          checkEndpointId(id);
          const { Id: _, ...input } = item;
          validateEndpointInput(input, `Item[${i}]`, Buffer.byteLength(JSON.stringify(item)));
          return { id, input: input as Json };
        });
        await endpoints.upsertBatch(appId, items);
        return accepted(req);
      },
    },
    {
      method: 'GET',
      path: '/v1/apps/{application-id}/endpoints/{endpoint-id}',
      handler: async (req, p) => {
        allow(req, 'GetEndpoint', p['application-id']);
        apps.require(p['application-id']);
        return json(200, await endpoints.require(p['application-id'], p['endpoint-id']));
      },
    },
    {
      method: 'DELETE',
      path: '/v1/apps/{application-id}/endpoints/{endpoint-id}',
      handler: async (req, p) => {
        allow(req, 'DeleteEndpoint', p['application-id']);
        apps.require(p['application-id']);
        return json(202, await endpoints.delete(p['application-id'], p['endpoint-id']));
      },
    },
    {
      method: 'GET',
      path: '/v1/apps/{application-id}/users/{user-id}',
      handler: async (req, p) => {
        allow(req, 'GetUserEndpoints', p['application-id']);
        apps.require(p['application-id']);
        return json(200, { Item: await endpoints.byUser(p['application-id'], p['user-id']) });
      },
    },
    {
      method: 'DELETE',
      path: '/v1/apps/{application-id}/users/{user-id}',
      handler: async (req, p) => {
        allow(req, 'DeleteUserEndpoints', p['application-id']);
        apps.require(p['application-id']);
        return json(202, { Item: await endpoints.deleteUser(p['application-id'], p['user-id']) });
      },
    },
    {
      method: 'POST',
      path: '/v1/apps/{application-id}/events',
      maxBodyBytes: MAX_PUT_EVENTS_REQUEST_BYTES,
      // Parsed and validated in ingest-prepare.ts (on a pool thread when configured), with the
      // same checks in the same order as the other routes: body, model, then authorization.
      handler: async (req, p) => {
        const id = p['application-id'];
        const body = { body: req.body, labels: p };
        return json(202, await events.putEventsBody(id, body, () => allow(req, 'PutEvents', id), () => s.callerCognito?.(req)));
      },
    },
    {
      method: 'POST',
      path: '/v1/apps/{application-id}/eventstream',
      handler: async (req, p) => {
        const id = p['application-id'];
        const write = input('PutEventStream', req, p, body(req)).WriteEventStream;
        allow(req, 'PutEventStream', id);
        apps.require(id);
        // Naming a role Pinpoint will assume needs iam:PassRole on it, checked once the ARNs are
        // well formed and before the role is looked up (so a refusal reveals nothing about it).
        const passRole = (roleArn: string) => authorizer.passRole(req, roleArn, PINPOINT_SERVICE_PRINCIPAL);
        return json(200, eventStreamShape(await eventStreams.put(id, write, s.callerArn(req), passRole)));
      },
    },
    {
      method: 'GET',
      path: '/v1/apps/{application-id}/eventstream',
      handler: (req, p) => {
        const id = p['application-id'];
        allow(req, 'GetEventStream', id);
        apps.require(id);
        return json(200, eventStreamShape(eventStreams.require(id)));
      },
    },
    {
      method: 'DELETE',
      path: '/v1/apps/{application-id}/eventstream',
      handler: async (req, p) => {
        const id = p['application-id'];
        allow(req, 'DeleteEventStream', id);
        apps.require(id);
        return json(200, eventStreamShape(await eventStreams.delete(id)));
      },
    },
    {
      // Pinstream extension: deliver the app's events again from StartTime on.
      method: 'POST',
      path: '/v1/apps/{application-id}/eventstream/replay',
      handler: async (req, p) => {
        const id = p['application-id'];
        allow(req, 'PutEventStream', id);
        apps.require(id);
        const { row, checkpoint, startMs } = await eventStreams.replay(id, body(req).StartTime);
        return json(200, { ...eventStreamShape(row), Checkpoint: checkpoint, StartTime: new Date(startMs).toISOString() });
      },
    },
    {
      // Pinstream extension: "Automatically create a role" — creates (or repairs) the app's
      // event-stream role. The caller must also be allowed to create roles and set their policies,
      // to pass the role to Pinpoint (it is made to be passed), and to write to the destination
      // themselves (its put and describe actions): the role it makes can do no more than its
      // caller, so the extension is no way to reach another tenant's stream.
      method: 'POST',
      path: '/v1/apps/{application-id}/eventstream/role',
      handler: async (req, p) => {
        const id = p['application-id'];
        allow(req, 'PutEventStream', id);
        const roleArn = eventStreams.streamRoleArn(id);
        authorizer.authorize(req, 'iam:CreateRole', roleArn);
        authorizer.authorize(req, 'iam:PutRolePolicy', roleArn);
        authorizer.passRole(req, roleArn, PINPOINT_SERVICE_PRINCIPAL);
        apps.require(id);
        const write = body(req);
        const destination = eventStreams.roleDestination(write);
        const needs = destinationActions(destination)!;
        authorizer.authorize(req, needs.put, destination);
        authorizer.authorize(req, needs.describe, destination);
        return json(201, { RoleArn: await eventStreams.createRole(id, write) });
      },
    },
    ...(s.guestAccess
      ? [
          {
            // Pinstream extension: guest access for a project in one step — an identity pool with an
            // unauthenticated role that may only PutEvents and UpdateEndpoint on this project, and
            // the configuration an app needs (src/cognito/guest.ts authorizes each part).
            method: 'POST',
            path: '/v1/apps/{application-id}/guest-access',
            handler: async (req: ApiRequest, p: Record<string, string>) => {
              const id = p['application-id'];
              allow(req, 'GetApp', id);
              apps.require(id);
              return json(201, await s.guestAccess!(req, id));
            },
          } satisfies Route,
        ]
      : []),
    {
      // Pinstream extension: delivery health of every event stream the caller may read.
      method: 'GET',
      path: '/v1/eventstreams/status',
      // Checkpoint is the one saved in the metadata Store (shared by every node); Health is the
      // worker's own when it runs on this node, else the holder's id and the lag from that saved
      // checkpoint (state 'elsewhere'), or state 'stopped' when no node is known to run it.
      handler: async (req) => {
        const rows = eventStreams.all().filter((row) => authorizer.allowed(req, 'mobiletargeting:GetEventStream', apps.arn(row.app_id)));
        const saved = rows.length > 0 ? await eventStreams.store.checkpoints() : new Map<string, { position: number }>();
        const Item = rows.map((row) => {
          const checkpoint = saved.get(row.app_id)?.position;
          return { ...eventStreamShape(row), Checkpoint: checkpoint, Health: s.deliveryHealth(row.app_id, checkpoint) };
        });
        return json(200, { Item });
      },
    },
    {
      method: 'GET',
      path: '/v1/tags/{resource-arn+}',
      handler: (req, p) => {
        const id = apps.appIdFromArn(p['resource-arn']);
        allow(req, 'ListTagsForResource', id);
        const app = apps.require(id);
        return json(200, { tags: app.tags });
      },
    },
    {
      method: 'POST',
      path: '/v1/tags/{resource-arn+}',
      handler: async (req, p) => {
        const { tags } = input('TagResource', req, p, body(req)).TagsModel;
        const id = apps.appIdFromArn(p['resource-arn']);
        allow(req, 'TagResource', id);
        const app = apps.require(id);
        await apps.tag(app.Id, checkTags(tags, 'tags'));
        return { status: 204 };
      },
    },
    {
      method: 'DELETE',
      path: '/v1/tags/{resource-arn+}',
      handler: async (req, p) => {
        const id = apps.appIdFromArn(p['resource-arn']);
        allow(req, 'UntagResource', id);
        const app = apps.require(id);
        const keys = req.query.getAll('tagKeys');
        if (keys.length === 0) throw badRequest('tagKeys is required');
        await apps.untag(app.Id, keys);
        return { status: 204 };
      },
    },
    ...(s.jobs ? jobRoutes({ ...s.jobs, apps, authorizer, input, body }) : []),
    ...(s.extraRoutes ?? []),
    ...(s.analytics ? analyticsRoutes({ apps, analytics: s.analytics, authorizer, clock: s.clock ?? systemClock }) : []),
  ];
  // Every other operation of AWS's model answers that Pinstream does not support it.
  const router = new RestJsonRouter(routes, MAX_REQUEST_BYTES, { service: 'Pinpoint', operations: pinpointModel.operations });

  return {
    signingServices: [PINPOINT_SIGNING_NAME],
    maxBodyBytes: (req) => router.maxBodyBytes(req),
    handle: (req): Promise<ApiResponse> => router.handle(req),
    error: restJsonError,
    routes: routes.map((r) => `${r.method} ${r.path}`),
  };
}

function pageSize(raw: string | null): number {
  if (raw === null || raw === '') return DEFAULT_APPS_PAGE_SIZE;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_APPS_PAGE_SIZE) {
    throw badRequest(`page-size must be an integer from 1 to ${MAX_APPS_PAGE_SIZE}; got "${raw}"`);
  }
  return n;
}
