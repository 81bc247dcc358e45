// Configuration: read once at start-up from defaults, an optional JSON file and PINSTREAM_*
// environment variables (later sources win), validated in one place so a bad setting fails the
// start with a message naming it, never later in a request.

import { readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { availableParallelism, hostname, totalmem } from 'node:os';
import { parsePostgresUrl, PostgresError } from '../store/postgres-url.js';
import { MasterKeyError, readMasterKey } from '../iam/secrets.js';
import { MAX_NICE, MIN_NICE } from '../threads/priority.js';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  region: string;
  accountId: string;
  /** Bootstrap admin key; generated on first start and stored in the data directory when absent. */
  adminAccessKeyId?: string;
  adminSecretAccessKey?: string;
  /** fdatasync every log append — ingest log and Kinesis shards (group commit). Off only to measure. */
  logFsync: boolean;
  /** How many recent (application, endpoint, event id) triples PutEvents remembers to drop retries. */
  dedupWindowEvents: number;
  /** Days events are kept in the log and analytics. */
  retentionDays: number;
  /** How long embedded Kinesis streams stay CREATING/UPDATING/DELETING; 0 = changes apply at once. */
  kinesisTransitionMs: number;
  /** Enforce AWS's per-shard throughput quotas (1 MiB/s or 1,000 records/s in, 2 MiB/s out). */
  kinesisShardLimits: boolean;
  /**
   * Where event streams are delivered, by destination ARN pattern (`*` wildcards); the first match
   * wins. Destinations matching none, in this server's region and account, go to the embedded
   * services; others are refused until configured.
   */
  destinations: DestinationRoute[];
  /**
   * Where Firehose's S3 buckets live, by bucket name pattern (`*` wildcards); the first match wins.
   * A route with `dir` is a local folder, one with `endpoint` an S3-compatible service. Buckets
   * matching none are folders under `<dataDir>/buckets/<bucket>`.
   */
  buckets: BucketRoute[];
  /** HTTP: the request line and headers must arrive within this long of the connection or of the previous response. */
  headersTimeoutMs: number;
  /** HTTP: once the headers are in, the whole body must arrive within this long (408 otherwise). */
  bodyTimeoutMs: number;
  /** HTTP: an idle keep-alive connection (HTTP/1.1) or an HTTP/2 session without streams is closed after this long. */
  keepAliveTimeoutMs: number;
  /**
   * HTTP: open connections at most; 0 = three quarters of the process's file-descriptor limit. The
   * last OPERATOR_RESERVE_CONNECTIONS of them serve only /health and /metrics.
   */
  maxConnections: number;
  /** HTTP: request-body bytes held, over all requests, before their signature is verified. */
  maxUnverifiedBodyBytes: number;
  /** HTTP/2: streams one session may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
  http2MaxConcurrentStreams: number;
  /** HTTP/2: memory one session may use (Node's maxSessionMemory), in MB; beyond it new streams are refused. */
  http2MaxSessionMemoryMb: number;
  /** Bearer token that `GET /metrics` requires; unset = /metrics answers 401 to everyone. */
  metricsToken?: string;
  /**
   * OpenID Connect providers whose ID tokens Cognito identity pools and STS
   * AssumeRoleWithWebIdentity accept (what IAM OIDC providers are in AWS): the issuer, its keys
   * (a JWKS file or https URL) and the client ids (audiences) tokens may be for.
   */
  oidcProviders: OidcProviderConfig[];
  /**
   * TLS: PEM certificate file (the server's certificate, optionally followed by its intermediates).
   * With tlsKey set, `port` speaks HTTPS only (HTTP/1.1 and HTTP/2 by ALPN); see src/http/tls.ts.
   */
  tlsCert?: string;
  /** TLS: PEM private key file of tlsCert (unencrypted). */
  tlsKey?: string;
  /** TLS: PEM file of intermediate certificates sent after tlsCert, for a chain kept in its own file. */
  tlsCa?: string;
  /** With TLS on: a second port that speaks plain HTTP (HTTP/1.1 and h2c); unset = none. */
  httpPort?: number;
  /**
   * The email/SMS event receiver at MESSAGING_EVENTS_PATH (src/messaging/receiver.ts): the access
   * keys Firehose HTTP endpoint destinations send, and how records are attributed to projects.
   * Unset = the receiver is off (every request to it is refused).
   */
  messagingEvents?: MessagingEventsConfig;
  /**
   * Worker threads that parse and validate PutEvents bodies and build their records beside the
   * thread that answers requests (src/pinpoint/parallel/); 0 = all of it on that thread.
   */
  ingestThreads: number;
  /**
   * Metadata on PostgreSQL (postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE) instead of the data
   * directory's SQLite database: what lets N nodes share apps and IAM. Unset = embedded.
   */
  postgresUrl?: string;
  /**
   * NATS servers (any of a cluster's; the client finds the others): with this set every log (the
   * ingest log, Kinesis shards, Firehose buffers) is a JetStream stream instead of a segment log
   * in the data directory. Unset = embedded logs.
   */
  natsUrl?: string[];
  /** Replicas of each JetStream stream; default 3 when natsUrl names 3 or more servers, else 1. */
  natsReplicas?: number;
  /**
   * Analytics in ClickHouse instead of the embedded DuckDB store (PINSTREAM_CLICKHOUSE_URL,
   * `http[s]://[user[:password]@]host:port[/database]`); unset = DuckDB. See src/analytics/clickhouse/.
   */
  clickhouseUrl?: ClickHouseConfig;
  /**
   * Worker threads that run the event-stream delivery workers (src/delivery/thread.ts), each
   * reading the ingest log through a read-only view; 0 = on the thread that answers requests.
   */
  consumerThreads: number;
  /**
   * DuckDB's memory limit for the analytics store, MB (its buffer pool and query operators; beyond
   * it DuckDB spills to `analytics/events.duckdb.tmp` or fails the query).
   */
  analyticsMemoryMb: number;
  /** Nice value of the analytics thread and its parse thread: the loader's JavaScript yields to request work (Linux). */
  analyticsNice: number;
  /** This node's name in leases and logs (PINSTREAM_NODE_ID); default the host name. */
  nodeId: string;
  /**
   * The secrets key file every node of a cluster shares (PINSTREAM_MASTER_KEY_FILE), in
   * `master.key`'s format; unset = `<dataDir>/master.key`, created on first start.
   */
  masterKeyFile?: string;
}

export interface MessagingEventsConfig {
  /** Accepted X-Amz-Firehose-Access-Key values (more than one while rotating). */
  accessKeys: string[];
  /** SES message tag / SMS context key / Firehose common attribute whose value is the project id. */
  appTag: string;
  /** SES or SMS configuration set name → project id. */
  configurationSets: Record<string, string>;
}

export interface OidcProviderConfig {
  /** The tokens' `iss`, e.g. https://login.example.com; the provider's name is it without https://. */
  issuer: string;
  /** A JWKS file (absolute, or relative to the working directory) or an https:// URL. */
  jwks: string;
  /** Audiences (`aud`) accepted through an IAM OIDC provider ARN; SupportedLoginProviders name their own. */
  clientIds: string[];
}

export interface BucketRoute {
  /** Bucket name pattern, e.g. `analytics-*`. */
  bucket: string;
  /** Local directory holding the bucket's objects (absolute, or relative to the working directory). */
  dir?: string;
  /** S3-compatible endpoint URL (path-style addressing). */
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
}

export interface DestinationRoute {
  /** ARN pattern, e.g. `arn:aws:kinesis:eu-west-1:123456789012:stream/*`. */
  arn: string;
  /** Service endpoint URL; absent = the AWS SDK's default for the region (real AWS). */
  endpoint?: string;
  /** Signing region; default: the ARN's region. */
  region?: string;
  /** Credentials; absent = the AWS SDK's default provider chain (environment, profile, instance role). */
  accessKeyId?: string;
  secretAccessKey?: string;
}

export const DEFAULT_PORT = 4580;
export const DEFAULT_ACCOUNT_ID = '000000000000';
export const DEFAULT_REGION = 'us-east-1';
/** Headers must arrive within 10 s (issue 12); Node's own default is 60 s. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** A 7 MiB Pinpoint body at 1 Mbit/s takes about 60 s. */
export const DEFAULT_BODY_TIMEOUT_MS = 60_000;
/** Longer than the idle timeouts of common clients and load balancers (60 s), so they close first. */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** 0: derived from the file-descriptor limit at start (see src/http/limits.ts). */
export const DEFAULT_MAX_CONNECTIONS = 0;
export const DEFAULT_MAX_UNVERIFIED_BODY_BYTES = 128 * 1024 * 1024;
export const MIN_MAX_UNVERIFIED_BODY_BYTES = 16 * 1024 * 1024;
/** What AWS's HTTP/2 endpoints (Kinesis SubscribeToShard) advertise. */
export const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS = 100;
export const DEFAULT_HTTP2_MAX_SESSION_MEMORY_MB = 32;
/** A metrics token shorter than this is too easy to guess. */
export const MIN_METRICS_TOKEN_LENGTH = 16;

/**
 * One prepare thread per core beyond the one that answers requests, at least one: measured on 2
 * cores (bench ingest, designs table), one thread beside the main one did best; more threads than
 * cores only take turns with the main thread.
 */
export const MAX_INGEST_THREADS = 64;
/** Past a few prepare threads the one main thread (SQLite, dedup, the log) is the limit. */
export const MAX_DEFAULT_INGEST_THREADS = 8;
export const DEFAULT_INGEST_THREADS = Math.max(1, Math.min(MAX_DEFAULT_INGEST_THREADS, availableParallelism() - 1));

/** Event streams are spread over at most this many consumers threads (by app id). */
export const MAX_CONSUMER_THREADS = 8;
/**
 * One consumers thread when there is a second core: delivery then never takes turns with request
 * work; more threads than cores would only take turns with each other. One core: on the main thread.
 */
export const DEFAULT_CONSUMER_THREADS = availableParallelism() > 1 ? 1 : 0;
/** Bounds of PINSTREAM_ANALYTICS_MEMORY_MB: below the minimum DuckDB cannot load a batch with its rollups. */
export const MIN_ANALYTICS_MEMORY_MB = 64;
export const MAX_ANALYTICS_MEMORY_MB = 1024 * 1024;
/**
 * The default DuckDB memory limit: an eighth of the machine's memory, at least MIN_ANALYTICS_MEMORY_MB
 * and at most MAX_DEFAULT_ANALYTICS_MEMORY_MB. DuckDB's own default is 80% of the machine's RAM, and
 * it keeps what it read, so the server's memory followed the data (4 GB after a 10M-event import).
 */
export const MAX_DEFAULT_ANALYTICS_MEMORY_MB = 512;
/**
 * The analytics thread's default nice value (PINSTREAM_ANALYTICS_NICE, 0 to 19). The loader is batch
 * work: at 10 its JavaScript takes about a tenth of a core that requests and delivery also want, and
 * all that is idle (DuckDB's native work is not covered: src/threads/priority.ts). Measured (bench
 * e2e --analytics-nice, 2 cores, four pairs of runs): at 10k events/s 202 → read p99 was lower at 10
 * in all four (by 3–150 ms) and p50 in three; PutEvents at the maximum was mixed (±15%); the
 * dashboards fell 3–5x further behind at the maximum (caught up within 3 s after the load).
 */
export const DEFAULT_ANALYTICS_NICE = 10;
export const DEFAULT_ANALYTICS_MEMORY_MB = Math.max(MIN_ANALYTICS_MEMORY_MB, Math.min(MAX_DEFAULT_ANALYTICS_MEMORY_MB, Math.floor(totalmem() / 1048576 / 8)));

export const DEFAULTS: Config = {
  host: '127.0.0.1',
  port: DEFAULT_PORT,
  dataDir: './data',
  region: DEFAULT_REGION,
  accountId: DEFAULT_ACCOUNT_ID,
  logFsync: true,
  dedupWindowEvents: 1_000_000,
  retentionDays: 90,
  kinesisTransitionMs: 0,
  kinesisShardLimits: false,
  destinations: [],
  buckets: [],
  headersTimeoutMs: DEFAULT_HEADERS_TIMEOUT_MS,
  bodyTimeoutMs: DEFAULT_BODY_TIMEOUT_MS,
  keepAliveTimeoutMs: DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  maxUnverifiedBodyBytes: DEFAULT_MAX_UNVERIFIED_BODY_BYTES,
  http2MaxConcurrentStreams: DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
  http2MaxSessionMemoryMb: DEFAULT_HTTP2_MAX_SESSION_MEMORY_MB,
  metricsToken: undefined,
  tlsCert: undefined,
  tlsKey: undefined,
  tlsCa: undefined,
  httpPort: undefined,
  oidcProviders: [],
  messagingEvents: undefined,
  ingestThreads: DEFAULT_INGEST_THREADS,
  postgresUrl: undefined,
  natsUrl: undefined,
  natsReplicas: undefined,
  clickhouseUrl: undefined,
  consumerThreads: DEFAULT_CONSUMER_THREADS,
  analyticsMemoryMb: DEFAULT_ANALYTICS_MEMORY_MB,
  analyticsNice: DEFAULT_ANALYTICS_NICE,
  nodeId: defaultNodeId(),
  masterKeyFile: undefined,
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Raw = Record<string, unknown>;

/** Environment variable → config key. These names are a contract (see DESIGN.md). */
const ENV_KEYS: Record<string, keyof Config> = {
  PINSTREAM_HOST: 'host',
  PINSTREAM_PORT: 'port',
  PINSTREAM_DATA_DIR: 'dataDir',
  PINSTREAM_REGION: 'region',
  PINSTREAM_ACCOUNT_ID: 'accountId',
  PINSTREAM_ADMIN_ACCESS_KEY_ID: 'adminAccessKeyId',
  PINSTREAM_ADMIN_SECRET_ACCESS_KEY: 'adminSecretAccessKey',
  PINSTREAM_LOG_FSYNC: 'logFsync',
  PINSTREAM_DEDUP_WINDOW_EVENTS: 'dedupWindowEvents',
  PINSTREAM_RETENTION_DAYS: 'retentionDays',
  PINSTREAM_KINESIS_TRANSITION_MS: 'kinesisTransitionMs',
  PINSTREAM_KINESIS_SHARD_LIMITS: 'kinesisShardLimits',
  PINSTREAM_DESTINATIONS: 'destinations',
  PINSTREAM_BUCKETS: 'buckets',
  PINSTREAM_HEADERS_TIMEOUT_MS: 'headersTimeoutMs',
  PINSTREAM_BODY_TIMEOUT_MS: 'bodyTimeoutMs',
  PINSTREAM_KEEP_ALIVE_TIMEOUT_MS: 'keepAliveTimeoutMs',
  PINSTREAM_MAX_CONNECTIONS: 'maxConnections',
  PINSTREAM_MAX_UNVERIFIED_BODY_BYTES: 'maxUnverifiedBodyBytes',
  PINSTREAM_HTTP2_MAX_CONCURRENT_STREAMS: 'http2MaxConcurrentStreams',
  PINSTREAM_HTTP2_MAX_SESSION_MEMORY_MB: 'http2MaxSessionMemoryMb',
  PINSTREAM_METRICS_TOKEN: 'metricsToken',
  PINSTREAM_TLS_CERT: 'tlsCert',
  PINSTREAM_TLS_KEY: 'tlsKey',
  PINSTREAM_TLS_CA: 'tlsCa',
  PINSTREAM_HTTP_PORT: 'httpPort',
  PINSTREAM_OIDC_PROVIDERS: 'oidcProviders',
  PINSTREAM_MESSAGING_EVENTS: 'messagingEvents',
  PINSTREAM_INGEST_THREADS: 'ingestThreads',
  PINSTREAM_POSTGRES_URL: 'postgresUrl',
  PINSTREAM_NATS_URL: 'natsUrl',
  PINSTREAM_NATS_REPLICAS: 'natsReplicas',
  PINSTREAM_CLICKHOUSE_URL: 'clickhouseUrl',
  PINSTREAM_CONSUMER_THREADS: 'consumerThreads',
  PINSTREAM_ANALYTICS_MEMORY_MB: 'analyticsMemoryMb',
  PINSTREAM_ANALYTICS_NICE: 'analyticsNice',
  PINSTREAM_NODE_ID: 'nodeId',
  PINSTREAM_MASTER_KEY_FILE: 'masterKeyFile',
};

/**
 * Loads configuration. The file is `PINSTREAM_CONFIG` when set (it must exist), else
 * `./pinstream.json` when present. Unknown keys in the file are errors, so typos don't pass silently.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const sources: Array<{ name: (k: string) => string; values: Raw }> = [];
  const file = env.PINSTREAM_CONFIG || (existsSync('pinstream.json') ? 'pinstream.json' : undefined);
  if (file !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      throw new ConfigError(`PINSTREAM_CONFIG: cannot read ${resolve(file)}: ${(e as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`${file}: must contain a JSON object`);
    }
    for (const k of Object.keys(parsed)) {
      // Own keys only: "constructor" or "__proto__" are not settings.
      if (!Object.hasOwn(DEFAULTS, k) && k !== 'adminAccessKeyId' && k !== 'adminSecretAccessKey') {
        throw new ConfigError(`${file}: unknown setting "${k}" (known: ${Object.keys(DEFAULTS).join(', ')})`);
      }
    }
    sources.push({ name: (k) => `${file}: ${k}`, values: parsed as Raw });
  }
  const fromEnv: Raw = Object.create(null);
  const envName: Record<string, string> = Object.create(null);
  for (const [v, k] of Object.entries(ENV_KEYS)) {
    if (env[v] !== undefined && env[v] !== '') {
      fromEnv[k] = env[v];
      envName[k] = v;
    }
  }
  sources.push({ name: (k) => envName[k] ?? k, values: fromEnv });
  sources.push({ name: (k) => k, values: overrides as Raw });

  // Null prototypes: keys come from a file and the environment, and `__proto__` must stay a plain key.
  const merged: Raw = Object.assign(Object.create(null), DEFAULTS);
  const origin: Record<string, string> = Object.create(null);
  for (const s of sources) {
    for (const [k, v] of Object.entries(s.values)) {
      if (v === undefined) continue;
      merged[k] = v;
      origin[k] = s.name(k);
    }
  }
  const label = (k: keyof Config) => origin[k] ?? k;
  if ((merged.adminAccessKeyId === undefined) !== (merged.adminSecretAccessKey === undefined)) {
    const [set, missing] = merged.adminAccessKeyId === undefined ? ['adminSecretAccessKey', 'adminAccessKeyId'] : ['adminAccessKeyId', 'adminSecretAccessKey'];
    throw new ConfigError(`${label(set as keyof Config)} is set but ${envNameOf(missing)} is not; set both or neither`);
  }
  if ((merged.tlsCert === undefined) !== (merged.tlsKey === undefined)) {
    const [set, missing] = merged.tlsCert === undefined ? ['tlsKey', 'tlsCert'] : ['tlsCert', 'tlsKey'];
    throw new ConfigError(`${label(set as keyof Config)} is set but ${envNameOf(missing)} is not; set both (a certificate and its key) or neither`);
  }
  // Without TLS the one port already speaks plain HTTP: a second one would be a surprise.
  if (merged.tlsCert === undefined && merged.tlsCa !== undefined) {
    throw new ConfigError(`${label('tlsCa')} is set but TLS is not (${envNameOf('tlsCert')} and ${envNameOf('tlsKey')})`);
  }
  if (merged.tlsCert === undefined && merged.httpPort !== undefined) {
    throw new ConfigError(`${label('httpPort')} is a plain-HTTP port beside the HTTPS one; without TLS (${envNameOf('tlsCert')}, ${envNameOf('tlsKey')}) ${envNameOf('port')} already speaks plain HTTP`);
  }
  return {
    host: str(merged.host, label('host')),
    port: int(merged.port, label('port'), 0, 65535),
    dataDir: str(merged.dataDir, label('dataDir')),
    region: pattern(merged.region, label('region'), /^[a-z]{2}(-[a-z]+)+-\d+$/, 'a region name such as us-east-1'),
    accountId: pattern(merged.accountId, label('accountId'), /^\d{12}$/, 'exactly 12 digits'),
    adminAccessKeyId: optional(merged.adminAccessKeyId, (v) =>
      pattern(v, label('adminAccessKeyId'), /^[A-Z0-9]{16,128}$/, '16-128 upper-case letters or digits'),
    ),
    adminSecretAccessKey: optional(merged.adminSecretAccessKey, (v) =>
      pattern(v, label('adminSecretAccessKey'), /^\S{16,128}$/, '16-128 characters without spaces'),
    ),
    logFsync: bool(merged.logFsync, label('logFsync')),
    dedupWindowEvents: int(merged.dedupWindowEvents, label('dedupWindowEvents'), 0, 100_000_000),
    retentionDays: int(merged.retentionDays, label('retentionDays'), 1, 3650),
    kinesisTransitionMs: int(merged.kinesisTransitionMs, label('kinesisTransitionMs'), 0, 600_000),
    kinesisShardLimits: bool(merged.kinesisShardLimits, label('kinesisShardLimits')),
    destinations: routes(merged.destinations, label('destinations')),
    buckets: bucketRoutes(merged.buckets, label('buckets')),
    headersTimeoutMs: int(merged.headersTimeoutMs, label('headersTimeoutMs'), 100, 600_000),
    bodyTimeoutMs: int(merged.bodyTimeoutMs, label('bodyTimeoutMs'), 100, 3_600_000),
    keepAliveTimeoutMs: int(merged.keepAliveTimeoutMs, label('keepAliveTimeoutMs'), 100, 3_600_000),
    // Below OPERATOR_RESERVE_CONNECTIONS + 1 no ordinary connection would fit; checked against the
    // file-descriptor limit at start, where that limit is known.
    maxConnections: maxConnections(merged.maxConnections, label('maxConnections')),
    // At least two of the largest request bodies (Kinesis JSON, 8 MiB) must fit.
    maxUnverifiedBodyBytes: int(merged.maxUnverifiedBodyBytes, label('maxUnverifiedBodyBytes'), MIN_MAX_UNVERIFIED_BODY_BYTES, 64 * 1024 * 1024 * 1024),
    http2MaxConcurrentStreams: int(merged.http2MaxConcurrentStreams, label('http2MaxConcurrentStreams'), 1, 10_000),
    http2MaxSessionMemoryMb: int(merged.http2MaxSessionMemoryMb, label('http2MaxSessionMemoryMb'), 1, 1024),
    metricsToken: optional(merged.metricsToken, (v) => metricsToken(v, label('metricsToken'))),
    // Paths only: the files are read and checked at start (src/http/tls.ts), and again on SIGHUP.
    tlsCert: optional(merged.tlsCert, (v) => resolve(str(v, label('tlsCert')))),
    tlsKey: optional(merged.tlsKey, (v) => resolve(str(v, label('tlsKey')))),
    tlsCa: optional(merged.tlsCa, (v) => resolve(str(v, label('tlsCa')))),
    httpPort: optional(merged.httpPort, (v) => httpPort(v, label('httpPort'), merged.port)),
    oidcProviders: oidcProviders(merged.oidcProviders, label('oidcProviders')),
    messagingEvents: optional(merged.messagingEvents, (v) => messagingEvents(v, label('messagingEvents'))),
    ingestThreads: int(merged.ingestThreads, label('ingestThreads'), 0, MAX_INGEST_THREADS),
    postgresUrl: optional(merged.postgresUrl, (v) => postgresUrl(v, label('postgresUrl'))),
    ...nats(merged.natsUrl, merged.natsReplicas, label('natsUrl'), label('natsReplicas')),
    clickhouseUrl: optional(merged.clickhouseUrl, (v) => clickhouseUrl(v, label('clickhouseUrl'))),
    consumerThreads: int(merged.consumerThreads, label('consumerThreads'), 0, MAX_CONSUMER_THREADS),
    analyticsMemoryMb: int(merged.analyticsMemoryMb, label('analyticsMemoryMb'), MIN_ANALYTICS_MEMORY_MB, MAX_ANALYTICS_MEMORY_MB),
    analyticsNice: int(merged.analyticsNice, label('analyticsNice'), MIN_NICE, MAX_NICE),
    nodeId: pattern(merged.nodeId, label('nodeId'), NODE_ID_PATTERN, '1 to 64 letters, digits, dots, dashes or underscores'),
    masterKeyFile: optional(merged.masterKeyFile, (v) => masterKeyFile(v, label('masterKeyFile'))),
  };
}

/** JetStream keeps at most this many replicas of a stream. */
export const MAX_NATS_REPLICAS = 5;
/** NATS servers at most in PINSTREAM_NATS_URL. */
export const MAX_NATS_SERVERS = 64;
/** One server: nats:// or tls:// URL, or host:port. No credentials in the URL: they would be printed in messages. */
const NATS_SERVER = /^(?:(?:nats|tls):\/\/)?(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** natsUrl (PINSTREAM_NATS_URL): comma-separated servers (environment), or that string or an array (file). */
function nats(v: unknown, r: unknown, name: string, replicasName: string): { natsUrl?: string[]; natsReplicas?: number } {
  if (v === undefined) {
    if (r !== undefined) throw new ConfigError(`${replicasName} is set but ${envNameOf('natsUrl')} is not`);
    return { natsUrl: undefined, natsReplicas: undefined };
  }
  const list = typeof v === 'string' ? v.split(',').map((x) => x.trim()) : v;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_NATS_SERVERS) {
    throw new ConfigError(`${name} must be 1-${MAX_NATS_SERVERS} NATS servers, comma-separated (nats://host:port or host:port)`);
  }
  const servers = list.map((x, i) => {
    if (typeof x !== 'string' || !NATS_SERVER.test(x)) throw new ConfigError(`${name}: server ${i + 1} must be nats://host:port, tls://host:port or host:port, ${typeof x === 'string' && x.includes('@') ? '(credentials do not belong in the URL; the value is not shown)' : `got ${JSON.stringify(x)}`}`);
    const port = /:(\d+)$/.exec(x)?.[1];
    if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) throw new ConfigError(`${name}: server ${i + 1} has port ${port}, outside 1-65535`);
    return x;
  });
  const natsReplicas = r === undefined ? (servers.length >= 3 ? 3 : 1) : int(r, replicasName, 1, MAX_NATS_REPLICAS);
  return { natsUrl: servers, natsReplicas };
}

/** The attribution tag unless configured: what a sender adds to SES messages or SMS context. */
export const DEFAULT_MESSAGING_APP_TAG = 'pinstream-app';
/** Firehose allows access keys up to 4,096 characters; shorter than this is too easy to guess. */
export const MIN_MESSAGING_ACCESS_KEY_LENGTH = 16;
export const MAX_MESSAGING_ACCESS_KEY_LENGTH = 4096;
/** SES configuration set names: letters, digits, _ and -, at most 64 characters. */
const CONFIGURATION_SET = /^[A-Za-z0-9_-]{1,64}$/;
/** Project ids as this server creates them (32 hex digits) or as imported (letters, digits, - and _). */
const PROJECT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** messagingEvents (PINSTREAM_MESSAGING_EVENTS): a JSON object (file) or JSON text (environment). */
function messagingEvents(v: unknown, name: string): MessagingEventsConfig {
  let o = v;
  if (typeof v === 'string') {
    try {
      o = JSON.parse(v);
    } catch (e) {
      throw new ConfigError(`${name} must be a JSON object: ${(e as Error).message}`);
    }
  }
  const keys = ['accessKeys', 'appTag', 'configurationSets'];
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ConfigError(`${name} must be an object {${keys.join(', ')}}`);
  const r = o as Record<string, unknown>;
  for (const k of Object.keys(r)) if (!keys.includes(k)) throw new ConfigError(`${name}: unknown key "${k}" (known: ${keys.join(', ')})`);
  const accessKeys = r.accessKeys;
  // Checked without echoing values: they are secrets even when they are bad ones.
  if (!Array.isArray(accessKeys) || accessKeys.length === 0) throw new ConfigError(`${name}.accessKeys must be a non-empty list of access keys`);
  accessKeys.forEach((k, i) => {
    if (typeof k !== 'string' || !/^[\x21-\x7e]+$/.test(k) || k.length < MIN_MESSAGING_ACCESS_KEY_LENGTH || k.length > MAX_MESSAGING_ACCESS_KEY_LENGTH) {
      throw new ConfigError(`${name}.accessKeys[${i}] must be ${MIN_MESSAGING_ACCESS_KEY_LENGTH}-${MAX_MESSAGING_ACCESS_KEY_LENGTH} printable ASCII characters without spaces (the value is not shown)`);
    }
  });
  const appTag = r.appTag === undefined ? DEFAULT_MESSAGING_APP_TAG : pattern(r.appTag, `${name}.appTag`, /^[A-Za-z0-9_:.-]{1,256}$/, 'a tag name (letters, digits, _ : . -)');
  const sets: Record<string, string> = Object.create(null);
  if (r.configurationSets !== undefined) {
    const c = r.configurationSets;
    if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new ConfigError(`${name}.configurationSets must be an object {"configuration-set-name": "project-id"}`);
    for (const [set, app] of Object.entries(c)) {
      if (!CONFIGURATION_SET.test(set)) throw new ConfigError(`${name}.configurationSets: "${set}" is not a configuration set name (1-64 letters, digits, _ or -)`);
      sets[set] = pattern(app, `${name}.configurationSets.${set}`, PROJECT_ID, 'a project id');
    }
  }
  return { accessKeys: [...(accessKeys as string[])], appTag, configurationSets: sets };
}

function httpPort(v: unknown, name: string, port: unknown): number {
  const n = int(v, name, 0, 65535);
  if (n !== 0 && n === Number(port)) throw new ConfigError(`${name} must differ from the HTTPS port, got ${n} for both`);
  return n;
}

/** Connections a server reserves for /health and /metrics (see src/http/server.ts). */
export const OPERATOR_RESERVE_CONNECTIONS = 16;

function maxConnections(v: unknown, name: string): number {
  const n = int(v, name, 0, 10_000_000);
  if (n !== 0 && n <= OPERATOR_RESERVE_CONNECTIONS) {
    throw new ConfigError(`${name} must be 0 (from the file-descriptor limit) or more than the ${OPERATOR_RESERVE_CONNECTIONS} connections reserved for /health, got ${JSON.stringify(v)}`);
  }
  return n;
}

/** Checked without echoing the value: it is a secret even when it is a bad one. */
function metricsToken(v: unknown, name: string): string {
  if (typeof v !== 'string' || !/^[\x21-\x7e]+$/.test(v) || v.length < MIN_METRICS_TOKEN_LENGTH || v.length > 512) {
    throw new ConfigError(`${name} must be ${MIN_METRICS_TOKEN_LENGTH}-512 printable ASCII characters without spaces (the value is not shown)`);
  }
  return v;
}

/** Where the ClickHouse analytics store is: the HTTP interface's origin, the credentials and the database. */
export interface ClickHouseConfig {
  /** `http[s]://host:port`, without credentials or path. */
  url: string;
  username: string;
  password: string;
  database: string;
}

/**
 * PINSTREAM_CLICKHOUSE_URL: the ClickHouse HTTP interface, with optional credentials and database
 * (`http://pinstream:secret@ch1:8123/analytics`). The user defaults to `default` and the database
 * to `pinstream` (created at start when missing). Errors never echo the password.
 */
export function clickhouseUrl(v: unknown, name: string): ClickHouseConfig {
  const s = str(v, name);
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    throw new ConfigError(`${name} must be a URL such as http://user:password@host:8123/database`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new ConfigError(`${name} must use http or https (ClickHouse's HTTP interface), got ${u.protocol}`);
  if (u.search !== '' || u.hash !== '') throw new ConfigError(`${name} must not have a query or fragment`);
  const path = decodeURIComponent(u.pathname.replace(/^\/+|\/+$/g, ''));
  const database = path === '' ? 'pinstream' : path;
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(database)) {
    throw new ConfigError(`${name}: the database (the URL's path) must be letters, digits and underscores, got "${database}"`);
  }
  return {
    url: `${u.protocol}//${u.host}`,
    username: u.username === '' ? 'default' : decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database,
  };
}

function envNameOf(key: string): string {
  return Object.entries(ENV_KEYS).find(([, k]) => k === key)?.[0] ?? key;
}

/** A list of route objects: a JSON array (file) or JSON text (environment). */
function routeList(v: unknown, name: string, keys: string[]): Array<{ f: string; o: Record<string, unknown> }> {
  let list = v;
  if (typeof v === 'string') {
    try {
      list = JSON.parse(v);
    } catch (e) {
      throw new ConfigError(`${name} must be a JSON array of routes: ${(e as Error).message}`);
    }
  }
  const shape = `{${keys.join(', ')}}`;
  if (!Array.isArray(list)) throw new ConfigError(`${name} must be an array of ${shape}`);
  return list.map((r, i) => {
    const f = `${name}[${i}]`;
    if (typeof r !== 'object' || r === null || Array.isArray(r)) throw new ConfigError(`${f} must be an object ${shape}`);
    const o = r as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!keys.includes(k)) throw new ConfigError(`${f}: unknown key "${k}" (known: ${keys.join(', ')})`);
    return { f, o };
  });
}

function routeCredentials(o: Record<string, unknown>, f: string): { accessKeyId?: string; secretAccessKey?: string } {
  const accessKeyId = optional(o.accessKeyId, (x) => str(x, `${f}.accessKeyId`));
  const secretAccessKey = optional(o.secretAccessKey, (x) => str(x, `${f}.secretAccessKey`));
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) throw new ConfigError(`${f}: set both accessKeyId and secretAccessKey, or neither`);
  return { accessKeyId, secretAccessKey };
}

/** Bucket routes (PINSTREAM_BUCKETS): each is a folder (`dir`) or an S3-compatible endpoint. */
function bucketRoutes(v: unknown, name: string): BucketRoute[] {
  return routeList(v, name, ['bucket', 'dir', 'endpoint', 'region', 'accessKeyId', 'secretAccessKey']).map(({ f, o }) => {
    const bucket = pattern(o.bucket, `${f}.bucket`, /^[a-z0-9*][a-z0-9.*-]{0,62}$/, 'a bucket name or pattern (lower-case letters, digits, dots, hyphens, *)');
    const dir = optional(o.dir, (x) => str(x, `${f}.dir`));
    const endpoint = optional(o.endpoint, (x) => pattern(x, `${f}.endpoint`, /^https?:\/\/[^\s]+$/, 'an http(s) URL'));
    if ((dir === undefined) === (endpoint === undefined)) throw new ConfigError(`${f}: set exactly one of dir (a local folder) or endpoint (an S3-compatible URL)`);
    const region = optional(o.region, (x) => pattern(x, `${f}.region`, /^[a-z]{2}(-[a-z]+)+-\d+$/, 'a region name'));
    return { bucket, dir: dir === undefined ? undefined : resolve(dir), endpoint, region, ...routeCredentials(o, f) };
  });
}

/** OIDC providers (PINSTREAM_OIDC_PROVIDERS): a JSON array (file) or JSON text (environment). */
function oidcProviders(v: unknown, name: string): OidcProviderConfig[] {
  const seen = new Set<string>();
  return routeList(v, name, ['issuer', 'jwks', 'clientIds']).map(({ f, o }) => {
    // https only, no query or fragment: the issuer is compared exactly with each token's iss.
    const issuer = pattern(o.issuer, `${f}.issuer`, /^https:\/\/[A-Za-z0-9.-]+(:\d+)?(\/[\x21-\x7e]*)?$/, 'an https:// URL without query (the tokens\' iss)');
    if (issuer.includes('?') || issuer.includes('#')) throw new ConfigError(`${f}.issuer must have no query or fragment`);
    if (seen.has(issuer)) throw new ConfigError(`${f}.issuer ${issuer} is configured twice`);
    seen.add(issuer);
    const jwks = str(o.jwks, `${f}.jwks`);
    const clientIds = o.clientIds === undefined ? [] : o.clientIds;
    if (!Array.isArray(clientIds) || !clientIds.every((c) => typeof c === 'string' && c.length > 0 && c.length <= 255)) {
      throw new ConfigError(`${f}.clientIds must be a list of client ids (1-255 characters each)`);
    }
    return { issuer, jwks: /^https?:\/\//.test(jwks) ? jwks : resolve(jwks), clientIds: [...clientIds] as string[] };
  });
}

/** Destination routes: a JSON array (file) or JSON text (PINSTREAM_DESTINATIONS). */
function routes(v: unknown, name: string): DestinationRoute[] {
  return routeList(v, name, ['arn', 'endpoint', 'region', 'accessKeyId', 'secretAccessKey']).map(({ f, o }) => {
    const arn = pattern(o.arn, `${f}.arn`, /^arn:aws[a-z-]*:(kinesis|firehose):[^:]*:[^:]*:.+$/, 'a Kinesis stream or Firehose delivery stream ARN pattern');
    const endpoint = optional(o.endpoint, (x) => pattern(x, `${f}.endpoint`, /^https?:\/\/[^\s]+$/, 'an http(s) URL'));
    const region = optional(o.region, (x) => pattern(x, `${f}.region`, /^[a-z]{2}(-[a-z]+)+-\d+$/, 'a region name'));
    return { arn, endpoint, region, ...routeCredentials(o, f) };
  });
}

function postgresUrl(v: unknown, name: string): string {
  const s = str(v, name);
  try {
    parsePostgresUrl(s, name);
  } catch (e) {
    if (e instanceof PostgresError) throw new ConfigError(e.message);
    throw e;
  }
  return s;
}

/** What a node id may be: it names leases (KV keys) and appears in log lines. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** The host name, cut to what a node id may hold (`node` when nothing is left). */
function defaultNodeId(): string {
  const h = hostname().replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 64);
  return h.length > 0 ? h : 'node';
}

/** The shared key file must exist and hold a key now: a node must not start with secrets it cannot open. */
function masterKeyFile(v: unknown, name: string): string {
  const file = str(v, name);
  try {
    readMasterKey(file);
  } catch (e) {
    throw new ConfigError(`${name}: ${e instanceof MasterKeyError ? e.message : `cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`}`);
  }
  return file;
}

function optional<T>(v: unknown, f: (v: unknown) => T): T | undefined {
  return v === undefined ? undefined : f(v);
}

function str(v: unknown, name: string): string {
  if (typeof v !== 'string' || v === '') throw new ConfigError(`${name} must be a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function pattern(v: unknown, name: string, re: RegExp, what: string): string {
  const s = str(v, name);
  if (!re.test(s)) throw new ConfigError(`${name} must be ${what}, got "${s}"`);
  return s;
}

function int(v: unknown, name: string, min: number, max: number): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return n;
}

function bool(v: unknown, name: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|1|yes|on)$/i.test(v)) return true;
  if (typeof v === 'string' && /^(false|0|no|off)$/i.test(v)) return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(v)}`);
}
