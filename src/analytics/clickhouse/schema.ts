// The ClickHouse tables of the analytics store, in SQL that runs on Debian's clickhouse-server
// 18.16 and on current releases (the `ENGINE = X() PARTITION BY … ORDER BY …` form, no DateTime64,
// no JSON type, no LowCardinality, which 18.16 only has behind an experimental setting).
//
// `events`: one row per event, the columns of DuckDB's EVENTS_DDL (types.ts) with
// - times as Int64 epoch milliseconds (`*_ms`): 18.16 has no DateTime64, and DateTime would
//   drop the milliseconds and bring in the server's time zone; `day` is the UTC day, computed by the
//   writer exactly as the DuckDB appender does;
// - the JSON maps as parallel key/value arrays (attributes: String values; metrics: Float64 values,
//   numbers only, as TRY_CAST(… AS DOUBLE) reads them; endpoint attributes: Array(String) values),
//   read with has()/indexOf() (sql.ts): 18.16 has no JSONExtract and visitParam cannot read keys with
//   dots or escapes.
// Engine: ReplacingMergeTree, sorting key (app_id, day, event_type, event_key), partitions by month.
// A repeated (app, event key) has the same event time, so the same day and partition: merges keep one
// copy and every query reads `events FINAL` (EVENTS below), which also collapses copies not merged
// yet. See store.ts for why that, not transactions, makes loading idempotent.
//
// `loader_checkpoints`: one row per checkpoint write, ReplacingMergeTree(version) by reader name;
// read with argMax(next_offset, version). Every row carries the running maximum of `loaded_to`.

/** The table expression queries that count or sum rows read: duplicates collapsed at query time. */
export const EVENTS = 'events FINAL';
/**
 * The table as stored, copies not merged yet included: for aggregates a copy of the same event cannot
 * change (DISTINCT, uniqExact, min/max, argMax/argMin of identical copies, EXISTS). FINAL costs a
 * merge on read: `count()` over 200k rows took 128 ms with it, 6 ms without.
 */
export const EVENTS_ANY = 'events';

export const EVENTS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS events (
  app_id String,
  event_key String,
  event_type String,
  event_ms Int64,
  arrival_ms Int64,
  day Date,
  endpoint_id String,
  user_id Nullable(String),
  endpoint_created_ms Nullable(Int64),
  session_id Nullable(String),
  session_start_ms Nullable(Int64),
  channel Nullable(String),
  platform Nullable(String),
  platform_version Nullable(String),
  app_version Nullable(String),
  make Nullable(String),
  model Nullable(String),
  country Nullable(String),
  attr_keys Array(String),
  attr_values Array(String),
  metric_keys Array(String),
  metric_values Array(Float64),
  ep_attr_keys Array(String),
  ep_attr_values Array(Array(String)),
  campaign_id Nullable(String),
  campaign_activity_id Nullable(String),
  treatment_id Nullable(String),
  journey_id Nullable(String),
  journey_activity_id Nullable(String),
  campaign_send_status Nullable(String),
  journey_send_status Nullable(String),
  delivery_type Nullable(String),
  journey_activity_type Nullable(String)
) ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(day) ORDER BY (app_id, day, event_type, event_key)`;

export const CHECKPOINTS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS loader_checkpoints (
  name String,
  next_offset Int64,
  loaded_to Int64,
  version UInt64
) ENGINE = ReplacingMergeTree(version) ORDER BY name`;

export const CLICKHOUSE_DDL = [EVENTS_TABLE_DDL, CHECKPOINTS_TABLE_DDL];
