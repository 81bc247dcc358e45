// The Analytics service (types.ts `Analytics`) as the server uses it: the event store, the loader
// that follows the ingest log, retention, dashboards and KPIs run on their own thread (thread.ts),
// reached through `AnalyticsThread` (remote.ts); saved funnels stay in the main thread's SQLite.

export {
  AnalyticsThread as PinstreamAnalytics,
  type AnalyticsOptions,
  ANALYTICS_CLOSE_TIMEOUT_MS,
  ANALYTICS_LOAD_TIMEOUT_MS,
  ANALYTICS_OPEN_TIMEOUT_MS,
  ANALYTICS_QUERY_TIMEOUT_MS,
  ANALYTICS_THREAD_HEAP_MB,
  ANALYTICS_THREAD_MAX_RESTARTS,
  EVENT_TYPES_DAYS,
  FILTER_NAMES_DAYS,
} from './remote.js';
export { AppendsAfter } from './gate.js';
