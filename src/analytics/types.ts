// The analytics boundary: the event store's table (DuckDB) and the questions the KPI API and the
// web console ask of it. Dashboards answer in one generic shape (tiles + charts of rows) so the
// console renders and exports every dashboard the same way.

/** Inclusive range of UTC days, `YYYY-MM-DD`. */
export interface DateRange {
  start: string;
  end: string;
}

export type DashboardName = 'overview' | 'usage' | 'revenue' | 'events' | 'funnels' | 'demographics' | 'campaigns' | 'journeys';
export const DASHBOARDS: readonly DashboardName[] = ['overview', 'usage', 'revenue', 'events', 'funnels', 'demographics', 'campaigns', 'journeys'];

export interface AttributeFilter {
  name: string;
  /** Any of these values matches. */
  values: string[];
}

export interface MetricFilter {
  name: string;
  op: '=' | '<' | '<=' | '>' | '>=';
  value: number;
}

export interface DashboardQuery {
  appId: string;
  range: DateRange;
  eventType?: string;
  eventAttribute?: AttributeFilter;
  eventMetric?: MetricFilter;
  endpointAttribute?: AttributeFilter;
  /** Demographics: endpoint ChannelType. */
  channel?: string;
  /** Funnels dashboard: which saved funnel. */
  funnelId?: string;
  campaignId?: string;
  journeyId?: string;
}

export interface Tile {
  id: string;
  label: string;
  value: number | null;
  unit: 'count' | 'usd' | 'percent' | 'ratio';
}

export interface Chart {
  id: string;
  title: string;
  kind: 'line' | 'bar' | 'heatmap' | 'funnel' | 'table';
  /** First column is the x axis / category (a day, a weekday, a step); the rest are series. */
  columns: string[];
  rows: Array<Array<string | number | null>>;
}

export interface DashboardResult {
  dashboard: DashboardName;
  range: DateRange;
  tiles: Tile[];
  charts: Chart[];
}

export interface FunnelStep {
  name: string;
  eventType: string;
  attributes?: AttributeFilter[];
}

export interface Funnel {
  id: string;
  name: string;
  steps: FunnelStep[];
}

/** One KPI answer in Pinpoint's BaseKpiResult shape. */
export interface KpiRows {
  Rows: Array<{
    GroupedBys?: Array<{ Key: string; Type: string; Value: string }>;
    Values: Array<{ Key: string; Type: string; Value: string }>;
  }>;
}

export type KpiScope = { appId: string; campaignId?: string; journeyId?: string };

/**
 * The DuckDB table every analytics query reads (owned by src/analytics/store.ts). One row per
 * accepted event, loaded from the ingest log; times are UTC. JSON columns keep the record's maps.
 */
export const EVENTS_DDL = `
CREATE TABLE IF NOT EXISTS events (
  app_id VARCHAR NOT NULL,
  event_key VARCHAR NOT NULL,        -- endpoint id + '/' + PutEvents event id: unique per app
  event_type VARCHAR NOT NULL,
  event_time TIMESTAMP NOT NULL,     -- event_timestamp
  arrival_time TIMESTAMP NOT NULL,   -- arrival_timestamp
  day DATE NOT NULL,                 -- UTC day of event_time
  endpoint_id VARCHAR NOT NULL,      -- client.client_id
  user_id VARCHAR,                   -- endpoint.User.UserId
  endpoint_created TIMESTAMP,        -- endpoint.CreationDate
  session_id VARCHAR,
  session_start TIMESTAMP,
  channel VARCHAR,                   -- endpoint.ChannelType
  platform VARCHAR,                  -- device.platform.name
  platform_version VARCHAR,
  app_version VARCHAR,               -- application.version_name
  make VARCHAR,
  model VARCHAR,
  country VARCHAR,                   -- endpoint.Location.Country, else device.locale.country
  attributes JSON,                   -- event attributes {string: string}
  metrics JSON,                      -- event metrics {string: number}
  endpoint_attributes JSON,          -- endpoint.Attributes {string: [string]}
  campaign_id VARCHAR,               -- attributes.campaign_id
  campaign_activity_id VARCHAR,
  treatment_id VARCHAR,
  journey_id VARCHAR,                -- attributes.journey_id
  journey_activity_id VARCHAR,
  -- Messaging attributes the Campaigns/Journeys dashboards and the KPIs test on every send, kept as
  -- columns (the JSON parse per row was a third of those scans). Added later: ALTERed into older stores.
  campaign_send_status VARCHAR,      -- attributes.campaign_send_status
  journey_send_status VARCHAR,       -- attributes.journey_send_status
  delivery_type VARCHAR,             -- attributes.delivery_type
  journey_activity_type VARCHAR      -- attributes.journey_activity_type
)`;

/** The messaging columns at the end of EVENTS_DDL (a store from before them gets them by ALTER + backfill). */
export const EVENTS_MESSAGING_COLUMNS = ['campaign_send_status', 'journey_send_status', 'delivery_type', 'journey_activity_type'] as const;

export interface Analytics {
  dashboard(name: DashboardName, q: DashboardQuery): Promise<DashboardResult>;
  /** Event types reported in the last `days` days (the Events filter list). */
  eventTypes(appId: string, days?: number): Promise<string[]>;
  /** Names of event attributes, event metrics and endpoint attributes seen in the last 90 days. */
  filterNames(appId: string): Promise<{ eventAttributes: string[]; eventMetrics: string[]; endpointAttributes: string[] }>;
  listFunnels(appId: string): Promise<Funnel[]>;
  saveFunnel(appId: string, f: Omit<Funnel, 'id'> & { id?: string }): Promise<Funnel>;
  deleteFunnel(appId: string, id: string): Promise<boolean>;
  /** One documented KPI over an inclusive day range; throws an ApiError for unknown names. */
  kpi(scope: KpiScope, name: string, range: DateRange): Promise<KpiRows>;
  /** Loads what the ingest log holds now (tests; the loader runs on its own otherwise). */
  catchUp(): Promise<void>;
  close(): Promise<void>;
}
