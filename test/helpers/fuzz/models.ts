// The operations the fuzzer calls and their input shapes, read from the AWS service models (the
// tables generated from them in src/models/generated) plus Pinstream's own extension routes, written
// here in the same form. Nothing about Pinstream's implementation is assumed: which operations
// it implements is learnt at run time from its answers.

import { model as pinpoint } from '../../../src/models/generated/pinpoint.js';
import { model as kinesis } from '../../../src/models/generated/kinesis.js';
import { model as firehose } from '../../../src/models/generated/firehose.js';
import { model as iam } from '../../../src/models/generated/iam.js';
import { model as sts } from '../../../src/models/generated/sts.js';
import { model as cognitoIdentity } from '../../../src/models/generated/cognito-identity.js';

const MODELS = new Map<string, unknown>([
  ['pinpoint', pinpoint],
  ['kinesis', kinesis],
  ['firehose', firehose],
  ['iam', iam],
  ['sts', sts],
  ['cognito-identity', cognitoIdentity],
]);

export type ProtocolName = 'rest' | 'json' | 'query';

/** A botocore shape, as much of it as the fuzzer reads. */
export interface Shape {
  type: string;
  members?: Record<string, MemberRef>;
  required?: string[];
  member?: { shape: string; locationName?: string };
  key?: { shape: string };
  value?: { shape: string };
  min?: number;
  max?: number;
  enum?: string[];
  pattern?: string;
  payload?: string;
  flattened?: boolean;
}

export interface MemberRef {
  shape: string;
  location?: 'uri' | 'querystring' | 'header' | 'headers' | 'statusCode';
  locationName?: string;
}

export interface Operation {
  /** Which model: pinpoint, kinesis, firehose, iam, sts, cognito-identity (Pinstream's extensions are in pinpoint). */
  service: string;
  protocol: ProtocolName;
  name: string;
  method: string;
  requestUri: string;
  /** Input shape name, resolved in `shapes`. */
  input?: string;
  shapes: Record<string, Shape>;
  /** For awsJson: the X-Amz-Target prefix; for Query: the Version. */
  targetPrefix?: string;
  apiVersion: string;
  /** A Pinstream extension route (not in the AWS model). */
  extension?: boolean;
  /** AWS answers it without a signature (the model's noAuth: Cognito's GetId, GetCredentialsForIdentity…). */
  unsigned?: boolean;
}

interface BotocoreModel {
  metadata: { protocol: string; targetPrefix?: string; apiVersion: string };
  operations: Record<string, { name: string; http: { method: string; requestUri: string }; input?: { shape: string }; unsigned?: boolean }>;
  shapes: Record<string, Shape>;
}

/** The X-Amz-Target prefixes of the awsJson services the server answers, from their models. */
export const AWS_JSON_TARGET_PREFIXES = ['kinesis', 'firehose', 'cognito-identity'].map((s) => loadModel(s).metadata.targetPrefix!);

export function loadModel(service: string): BotocoreModel {
  const m = MODELS.get(service);
  if (!m) throw new Error(`no generated model table for ${service}`);
  return m as BotocoreModel;
}

const PROTOCOLS: Record<string, ProtocolName> = { 'rest-json': 'rest', json: 'json', query: 'query' };

export function operationsOf(service: string): Operation[] {
  const m = loadModel(service);
  const protocol = PROTOCOLS[m.metadata.protocol];
  if (!protocol) throw new Error(`${service}: protocol ${m.metadata.protocol} is not fuzzed`);
  const shapes = m.shapes;
  const ops: Operation[] = Object.values(m.operations).map((o) => ({
    service,
    protocol,
    name: o.name,
    method: o.http.method,
    requestUri: o.http.requestUri,
    input: o.input?.shape,
    shapes,
    targetPrefix: m.metadata.targetPrefix,
    apiVersion: m.metadata.apiVersion,
    unsigned: o.unsigned,
  }));
  if (service === 'pinpoint') ops.push(...pinstreamExtensions(shapes, m.metadata.apiVersion));
  return ops;
}

/**
 * Pinstream's extension routes under /v1/ (README "Replay and automatic roles", the console's
 * analytics routes), in botocore form so they are generated and encoded like Pinpoint's own.
 */
function pinstreamExtensions(pinpointShapes: Record<string, Shape>, apiVersion: string): Operation[] {
  const shapes: Record<string, Shape> = {
    ...pinpointShapes,
    __string: { type: 'string' },
    AppId: { type: 'string' },
    DashboardName: {
      type: 'string',
      enum: ['overview', 'usage', 'revenue', 'events', 'funnels', 'demographics', 'campaigns', 'journeys', 'overview.csv', 'events.csv', 'funnels.csv'],
    },
    Day: { type: 'string', pattern: '^20[0-9]{2}-[01][0-9]-[0-3][0-9]$' },
    AttributeFilterParam: { type: 'string', pattern: '^[a-z]{1,5}:[a-z]{1,5}(,[a-z]{1,5}){0,2}$' },
    MetricFilterParam: { type: 'string', pattern: '^[a-z]{1,5}:(<|<=|=|>|>=):-?[0-9]{1,4}$' },
    ReplayRequest: { type: 'structure', required: ['ApplicationId', 'StartTime'], members: { ApplicationId: uri(), StartTime: { shape: 'IsoTime' } } },
    IsoTime: { type: 'string', pattern: '^20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z$' },
    RoleRequest: { type: 'structure', required: ['ApplicationId', 'DestinationStreamArn'], members: { ApplicationId: uri(), DestinationStreamArn: { shape: '__string' } } },
    StatusRequest: { type: 'structure', members: {} },
    AppRequest: { type: 'structure', required: ['ApplicationId'], members: { ApplicationId: uri() } },
    DashboardRequest: {
      type: 'structure',
      required: ['ApplicationId', 'Name'],
      members: {
        ApplicationId: uri(),
        Name: { shape: 'DashboardName', location: 'uri', locationName: 'name' },
        Start: q('Day', 'start'),
        End: q('Day', 'end'),
        EventType: q('__string', 'event-type'),
        EventAttribute: q('AttributeFilterParam', 'event-attribute'),
        EventMetric: q('MetricFilterParam', 'event-metric'),
        EndpointAttribute: q('AttributeFilterParam', 'endpoint-attribute'),
        Channel: q('__string', 'channel'),
        FunnelId: q('__string', 'funnel-id'),
        CampaignId: q('__string', 'campaign-id'),
        JourneyId: q('__string', 'journey-id'),
      },
    },
    SaveFunnelRequest: { type: 'structure', required: ['ApplicationId', 'name', 'steps'], members: { ApplicationId: uri(), id: { shape: '__string' }, name: { shape: '__string' }, steps: { shape: 'FunnelSteps' } } },
    FunnelSteps: { type: 'list', member: { shape: 'FunnelStep' }, max: 12 },
    FunnelStep: { type: 'structure', required: ['name', 'eventType'], members: { name: { shape: '__string' }, eventType: { shape: '__string' }, attributes: { shape: 'FunnelFilters' } } },
    FunnelFilters: { type: 'list', member: { shape: 'FunnelFilter' }, max: 3 },
    FunnelFilter: { type: 'structure', required: ['name', 'values'], members: { name: { shape: '__string' }, values: { shape: 'ListOf__string' } } },
    DeleteFunnelRequest: { type: 'structure', required: ['ApplicationId', 'FunnelId'], members: { ApplicationId: uri(), FunnelId: { shape: '__string', location: 'uri', locationName: 'funnel-id' } } },
  };
  const op = (name: string, method: string, requestUri: string, input: string): Operation => ({
    service: 'pinpoint',
    protocol: 'rest',
    name,
    method,
    requestUri,
    input,
    shapes,
    apiVersion,
    extension: true,
  });
  return [
    op('ReplayEventStream', 'POST', '/v1/apps/{application-id}/eventstream/replay', 'ReplayRequest'),
    op('CreateEventStreamRole', 'POST', '/v1/apps/{application-id}/eventstream/role', 'RoleRequest'),
    op('GetEventStreamsStatus', 'GET', '/v1/eventstreams/status', 'StatusRequest'),
    op('GetDashboard', 'GET', '/v1/apps/{application-id}/dashboards/{name}', 'DashboardRequest'),
    op('GetAnalyticsFilters', 'GET', '/v1/apps/{application-id}/analytics/filters', 'AppRequest'),
    op('ListFunnels', 'GET', '/v1/apps/{application-id}/funnels', 'AppRequest'),
    op('SaveFunnel', 'POST', '/v1/apps/{application-id}/funnels', 'SaveFunnelRequest'),
    op('DeleteFunnel', 'DELETE', '/v1/apps/{application-id}/funnels/{funnel-id}', 'DeleteFunnelRequest'),
  ];
}

function uri(): MemberRef {
  return { shape: 'AppId', location: 'uri', locationName: 'application-id' };
}

function q(shape: string, name: string): MemberRef {
  return { shape, location: 'querystring', locationName: name };
}
