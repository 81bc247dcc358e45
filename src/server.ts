// Wires one Pinstream process: metadata store, access keys, the ingest log, the Pinpoint services
// and the HTTP front door, from a validated Config. Tests start it in-process on port 0; the CLI
// starts it on the configured port.

import { systemClock, type Clock } from './clock.js';
import { ConfigError, type Config } from './config/config.js';
import { createDispatcher } from './http/dispatch.js';
import { listen, type ServerStats } from './http/server.js';
import { loadTlsMaterial, type TlsMaterial } from './http/tls.js';
import { fileDescriptorLimit, resolveMaxConnections } from './http/limits.js';
import { httpMetrics, operatorRoutes } from './http/operator.js';
import { PolicyAuthorizer } from './iam/authorizer.js';
import { iamServices } from './iam/api.js';
import { IamStore } from './iam/store.js';
import { assumeProblem, assumeRole, FIREHOSE_SERVICE_PRINCIPAL, PINPOINT_SERVICE_PRINCIPAL, roleMayNot } from './iam/roles.js';
import { queryProtocol } from './http/query.js';
import { kinesisAuthorizer } from './kinesis/authz.js';
import type { Credentials } from './iam/sigv4.js';
import type { Log } from './log/log.js';
import type { LogFs } from './log/fs.js';
import { SegmentLogProvider, renderLogMetrics, type LogProvider, type LogsHealth } from './log/provider.js';
import { JetStreamLogProvider, NatsUnavailableError } from './log/jetstream/provider.js';
import { Kvm } from '@nats-io/kv';
import { KvPlacement, LocalPlacement, renderPlacementMetrics, type KvPlacementOptions, type Placement } from './cluster/placement.js';
import { pinpointProtocol } from './pinpoint/api.js';
import { Apps } from './pinpoint/apps.js';
import { Dedup } from './pinpoint/dedup.js';
import { Endpoints } from './pinpoint/endpoints.js';
import { EventIngest } from './pinpoint/events.js';
import { decodeIngestEntry } from './pinpoint/ingest-record.js';
import { openDb } from './store/db.js';
import { openMetadata } from './store/metadata.js';
import { EventStreams } from './pinpoint/eventstream.js';
import { DeliveryManager } from './delivery/manager.js';
import { EventStreamStore } from './pinpoint/eventstream-store.js';
import { renderMetrics } from './delivery/metrics.js';
import type { ApiRequest } from './http/request.js';
import { awsJsonProtocol } from './http/awsjson.js';
import { kinesisService, KINESIS_TARGET_PREFIX } from './kinesis/api.js';
import { consumerOperations } from './kinesis/consumers.js';
import { kinesisResourcePolicies } from './kinesis/admin.js';
import { encryptionOperations } from './kinesis/encryption.js';
import { TokenSigner } from './kinesis/iterators.js';
import { KinesisData } from './kinesis/records.js';
import { StreamRegistry } from './kinesis/streams.js';
import { firehoseService, FIREHOSE_TARGET_PREFIX } from './firehose/api.js';
import { firehoseAuthorizer } from './firehose/authz.js';
import { FirehoseService } from './firehose/service.js';
import { BuildThread } from './firehose/build.js';
import { consoleHandler } from './console/serve.js';
import { AppendsAfter, PinstreamAnalytics } from './analytics/index.js';
import { cognitoService, COGNITO_TARGET_PREFIX } from './cognito/api.js';
import { webIdentityFederation } from './cognito/federation.js';
import { createGuestAccess } from './cognito/guest.js';
import { DEFAULT_COGNITO_LIMITS, IdentityPools, type CognitoLimits } from './cognito/pools.js';
import { CognitoTokens, OidcProvider } from './cognito/tokens.js';
import { SecretBox } from './iam/secrets.js';
import { EndpointJobs } from './pinpoint/jobs/jobs.js';
import type { JobSettings } from './pinpoint/jobs/limits.js';
import { HistoryJobs } from './history/jobs.js';
import { checkClickHouse } from './analytics/clickhouse/store.js';
import { HISTORY_IMPORT_CLICKHOUSE_MESSAGE } from './analytics/event-store.js';
import { historyRoutes } from './history/routes.js';
import { MESSAGING_EVENTS_PATH, MessagingReceiver } from './messaging/receiver.js';
import { glueService, GLUE_TARGET_PREFIX } from './glue/api.js';
import { CatalogStore, DEFAULT_CATALOG_LIMITS, type CatalogLimits } from './catalog/store.js';
import { Catalog } from './catalog/catalog.js';
import { queryRoutes } from './sql/routes.js';
import { renderMemoryMetrics } from './memory.js';
import { prepareThreadsHeapBytes } from './pinpoint/parallel/pool.js';
import { bucketLocation } from './firehose/objects/index.js';
import { bucketName } from './firehose/objects/index.js';

/** How often retention runs over the ingest log and the embedded Kinesis shard logs. */
export const RETENTION_INTERVAL_MS = 60_000;

/** Retried events older than this are not looked for when the dedup window is rebuilt at start. */
export const DEDUP_REBUILD_WINDOW_MS = 60 * 60 * 1000;

export interface Pinstream {
  /** `https://…` when TLS is configured. */
  url: string;
  port: number;
  /** The plain-HTTP port beside HTTPS (PINSTREAM_HTTP_PORT), when configured. */
  httpUrl?: string;
  /** The certificate served, when TLS is configured. */
  tls?: Pick<TlsMaterial, 'names' | 'validTo' | 'fingerprint256'>;
  /**
   * Reads the certificate and key files again and serves them to new connections; on a bad pair
   * (ConfigError) the certificate in use stays. Only with TLS configured.
   */
  reloadTls(): Pick<TlsMaterial, 'names' | 'validTo' | 'fingerprint256'>;
  admin: Credentials;
  /** True when the admin key was generated by this start (its secret is shown only now). */
  adminCreated: boolean;
  ingestLog: Log;
  /** Where this node's singleton jobs run (KvPlacement with NATS, else LocalPlacement). */
  placement: Placement;
  /** Opens every log (ingest, Kinesis shards, Firehose) and sums their damage and write reports. */
  logs: LogProvider;
  /** PutEvents (tests observe retries waiting for their original's append). */
  ingest: EventIngest;
  kinesis: StreamRegistry;
  kinesisData: KinesisData;
  delivery: DeliveryManager;
  /** The embedded Firehose: delivery streams, their logs and deliverers. */
  firehose: FirehoseService;
  /** Endpoint import and export jobs. */
  jobs: EndpointJobs;
  /** The analytics event store, loader and dashboards (DuckDB under `<dataDir>/analytics`). */
  analytics: PinstreamAnalytics;
  /** History imports (src/history/). */
  history: HistoryJobs;
  /** The email/SMS event receiver (Firehose HTTP endpoint protocol) at MESSAGING_EVENTS_PATH. */
  messaging: MessagingReceiver;
  /** Valid email/SMS records no project took (unknown configuration set, voice events, ...); open only with messagingEvents configured. */
  unattributedLog?: Log;
  /** The Glue-style Data Catalog, read-only (what Firehose conversion and SQL read tables from). */
  catalog: Catalog;
  /** Every operation each API answers (Pinpoint as `METHOD /path`): what the isolation suite must cover. */
  operations: ApiInventory;
  /** The HTTP front door's live counters (connections, requests in flight, unverified body bytes). */
  httpStats(): ServerStats;
  close(): Promise<void>;
}

export interface ApiInventory {
  pinpoint: string[];
  kinesis: string[];
  firehose: string[];
  iam: string[];
  sts: string[];
  cognito: string[];
  glue: string[];
}

/** Parts tests may replace. */
export interface PinstreamDeps {
  /** File operations of every log (tests inject disk faults here); default node:fs/promises. */
  logFs?: LogFs;
  /** Segment size of every log (default 64 MiB); tests use small ones to get many segments. */
  logSegmentBytes?: number;
  /** Where the logs' damage and write-failure lines go (default stderr). */
  logReport?: (line: string) => void;
  /** With PINSTREAM_NATS_URL: the JetStream stream-name prefix (tests isolate themselves; default PINSTREAM). */
  natsPrefix?: string;
  /** With PINSTREAM_NATS_URL: how long start-up waits for NATS (default CONNECT_TIMEOUT_MS). */
  natsConnectTimeoutMs?: number;
  /** How long the start-up check of PINSTREAM_CLICKHOUSE_URL waits (CLICKHOUSE_STARTUP_CHECK_TIMEOUT_MS). */
  clickhouseCheckTimeoutMs?: number;
  /** Bounds on what unsigned Cognito calls can create (tests use small ones). */
  cognitoLimits?: Partial<CognitoLimits>;
  /** Endpoint import/export job settings (tests use small batches), and a hook awaited before each import batch. */
  jobs?: Partial<JobSettings> & { beforeBatch?: (jobId: string, totalProcessed: number) => Promise<void> | void };
  /** Rows per history-import commit (default HISTORY_BATCH_RECORDS; crash tests use small ones). */
  historyBatchRecords?: number;
  /** Bounds of the Data Catalog (tests use small ones). */
  catalogLimits?: Partial<CatalogLimits>;
  /** With PINSTREAM_NATS_URL: lease timings of the placement (tests use short ones; default LEASE_TTL_MS). */
  placement?: Pick<KvPlacementOptions, 'ttlMs' | 'renewMs' | 'safetyMs' | 'retryMs'>;
}

/** The /health answer: the logs' section has counts by log kind only, nothing tenant-identifying. */
export function healthBody(
  logs: LogsHealth,
  loader?: { recordsBehind: number },
): { status: 'ok' | 'degraded'; logs: LogsHealth; analytics?: { loaderRecordsBehind: number } } {
  const failing = Object.values(logs).some((k) => k.failingLogs > 0);
  return { status: failing ? 'degraded' : 'ok', logs, ...(loader ? { analytics: { loaderRecordsBehind: loader.recordsBehind } } : {}) };
}

/** The analytics loader's lag on /metrics (process-wide, like /health's). */
function loaderMetrics(loader: { recordsBehind: number; millisBehind: number } | undefined): string {
  if (!loader) return '';
  const name = 'pinstream_analytics_loader_records_behind';
  const ms = 'pinstream_analytics_loader_millis_behind';
  return (
    `# HELP ${name} Ingest-log records the analytics loader has not loaded yet (as of its last report: at most one batch stale).\n# TYPE ${name} gauge\n${name} ${loader.recordsBehind}\n` +
    `# HELP ${ms} Age of the oldest ingest-log record the analytics loader has not loaded (an upper bound while none is in hand).\n# TYPE ${ms} gauge\n${ms} ${loader.millisBehind}\n`
  );
}

export async function startPinstream(config: Config, clock: Clock = systemClock, deps: PinstreamDeps = {}): Promise<Pinstream> {
  // Before anything is opened: a cap the file-descriptor limit cannot hold stops the start.
  const maxConnections = resolveMaxConnections(config.maxConnections, fileDescriptorLimit());
  let tls = loadTlsMaterial(config);
  // Analytics in ClickHouse: checked here, before anything is opened, because the analytics thread
  // opens its store only later, in the background, after the server listens.
  if (config.clickhouseUrl) await clickhouseCheck(config, deps);
  // Logs: JetStream streams when NATS is configured (checked first: an unreachable NATS stops the
  // start before anything is opened), else segment logs in the data directory.
  const logs: LogProvider = config.natsUrl ? await natsLogs(config, clock, deps) : new SegmentLogProvider({ dataDir: config.dataDir, fsync: config.logFsync, clock, fs: deps.logFs, segmentBytes: deps.logSegmentBytes, report: deps.logReport });
  // Which node runs each singleton job (delivery workers, Firehose deliverers, the loader): leases
  // in JetStream KV when NATS is configured, else everything here.
  const placement = await openPlacement(config, logs, deps);
  const db = openDb(config.dataDir);
  // IAM and apps on the metadata store (PostgreSQL when configured); the rest on `db` for now.
  const meta = await openMetadata({ db, postgresUrl: config.postgresUrl });
  // One key for every sealed secret: the data directory's master.key, or the file all nodes share.
  const secrets = new SecretBox(config.dataDir, config.masterKeyFile);
  const iam = await IamStore.open(db, meta, clock, config.accountId, config.dataDir, { secrets });
  const authorizer = new PolicyAuthorizer(iam);
  const configured =
    config.adminAccessKeyId && config.adminSecretAccessKey
      ? { accessKeyId: config.adminAccessKeyId, secretAccessKey: config.adminSecretAccessKey }
      : undefined;
  const { credentials: admin, created } = await iam.ensureAdmin(configured);

  const ingestLog = await logs.open('ingest', 'ingest');
  const dedup = new Dedup(config.dedupWindowEvents);
  await rebuildDedup(ingestLog, dedup, config.dedupWindowEvents, clock.now() - DEDUP_REBUILD_WINDOW_MS);
  // The analytics thread and its DuckDB open in the background (they took ~300 ms of every start):
  // now when the log holds records the loader may have to load, else on the first analytics call
  // or the first append. Before accepting events: the producers append through `producerLog`,
  // whose appends wait for the loader's checkpoint check (a checkpoint beyond the log's end is
  // reported and skipped past), as the start itself waited for it before.
  // With ClickHouse (one store for every node) the loader is placed: one node loads (remote.ts).
  const analytics = PinstreamAnalytics.deferred({ dataDir: config.dataDir, ingestLog, db, meta, clock, retentionDays: config.retentionDays, memoryLimitMb: config.analyticsMemoryMb, nice: config.analyticsNice, clickhouse: config.clickhouseUrl, placement });
  if (ingestLog.endOffset() > 0) analytics.ready().catch(() => {}); // the failure is logged, and every call reports it
  const producerLog = new AppendsAfter(ingestLog, () => analytics.ready());

  const apps = await Apps.open(db, meta, clock, config.region, config.accountId);
  // Endpoints and their jobs on the metadata store too (read and written through its driver, not cached whole).
  const endpoints = new Endpoints(meta.driver, clock);
  endpoints.resumePurges().catch((e) => console.error('pinstream: removing the endpoints of deleted apps failed', e));
  const events = new EventIngest(apps, endpoints, producerLog, dedup, clock, config.accountId, { threads: config.ingestThreads });
  // Only a configured receiver can take records, so only then is there a log to keep them in.
  const unattributedLog = config.messagingEvents ? await logs.open('ingest', 'messaging-unattributed') : undefined;
  const messaging = new MessagingReceiver({
    config: config.messagingEvents,
    ingest: events,
    appExists: (id) => apps.get(id) !== undefined,
    unattributed: unattributedLog,
    clock,
    accountId: config.accountId,
  });

  // Kinesis definitions, data keys and the iterator-signing key on the metadata store: with
  // PostgreSQL and JetStream every node serves every stream.
  const kinesis = await StreamRegistry.open(
    meta,
    clock,
    {
      dataDir: config.dataDir,
      region: config.region,
      accountId: config.accountId,
      transitionMs: config.kinesisTransitionMs,
      fsync: config.logFsync,
      logs,
      secrets,
    },
    db,
  );
  const signer = await TokenSigner.open(meta, 'kinesis-iterators', secrets);
  const kinesisData = new KinesisData(kinesis, signer, clock, config.kinesisShardLimits);
  const kinesisCore = { registry: kinesis, data: kinesisData, signer, clock };
  authorizer.addResourcePolicies(kinesisResourcePolicies(kinesis));
  const retention = setInterval(() => {
    kinesis.applyRetention().catch((e) => console.error('pinstream: kinesis retention failed', e));
    // The ingest log keeps events for PINSTREAM_RETENTION_DAYS (whole segments are deleted).
    ingestLog.deleteOlderThan(clock.now() - config.retentionDays * 86_400_000).catch((e) => console.error('pinstream: ingest log retention failed', e));
    unattributedLog?.deleteOlderThan(clock.now() - config.retentionDays * 86_400_000).catch((e) => console.error('pinstream: messaging-unattributed log retention failed', e));
  }, RETENTION_INTERVAL_MS);
  retention.unref();

  const eventStreams = new EventStreams(await EventStreamStore.open(meta), clock, iam, ingestLog, (id) => apps.arn(id), config.retentionDays);
  let serverUrl = '';
  // Before Firehose: delivery streams converting records read their tables from it.
  const catalogStore = await CatalogStore.open(meta, clock, { ...DEFAULT_CATALOG_LIMITS, ...deps.catalogLimits });
  const catalog = new Catalog(catalogStore);
  const firehoseBuild = new BuildThread();
  // Delivery streams on the metadata store; each one's deliverer runs where placement says.
  const firehose = await FirehoseService.open({
    meta,
    placement,
    dataDir: config.dataDir,
    secrets,
    region: config.region,
    accountId: config.accountId,
    fsync: config.logFsync,
    clock,
    buckets: config.buckets,
    catalog,
    roles: {
      session: (roleArn, source) => assumeRole(iam, roleArn, source),
      mayNot: (roleArn, source, action, resource) => roleMayNot(iam, roleArn, source, action, resource),
    },
    serverUrl: () => serverUrl,
    logs,
    // Deliverers and their destination I/O off the request thread, in the Firehose thread (with
    // consumers threads at all, and segment logs); where they still run here (JetStream logs),
    // compression and Parquet conversion at least go to the build thread.
    ...(config.consumerThreads > 0 ? { build: firehoseBuild, deliveryThread: true } : {}),
    checkKinesisCheckpoint: (arn, shardId, seq, consumer) => kinesis.checkSequenceCheckpoint(arn, shardId, seq, consumer),
  });
  // Before listening: puts need every delivery stream's log open.
  await firehose.start();
  const { beforeBatch, ...jobSettings } = deps.jobs ?? {};
  const jobs = new EndpointJobs({
    driver: meta.driver,
    placement,
    apps,
    endpoints,
    clock,
    accountId: config.accountId,
    objects: firehose.objects,
    roleMayNot: (roleArn, source, action, resource) => roleMayNot(iam, roleArn, source, action, resource),
    settings: jobSettings,
    beforeBatch,
  });
  const delivery = new DeliveryManager({
    config,
    serverUrl: () => serverUrl,
    iam,
    eventStreams,
    ingestLog,
    clock,
    localKinesis: () => ({ ...kinesisLocal, writable: (i) => kinesis.getWritable(kinesis.resolveName(i)), put: (s, entries) => kinesisData.put(s, entries) }),
    placement,
  });
  eventStreams.attach(delivery);
  const metrics = () =>
    renderMetrics(eventStreams.all().map((r) => ({ appId: r.app_id, destinationArn: r.destination_arn, health: delivery.health(r.app_id), elsewhere: delivery.elsewhere(r.app_id) }))) +
    kinesisData.metrics.render(kinesis) +
    httpMetrics(server.stats()) +
    messaging.metrics() +
    renderLogMetrics(logs.health()) +
    loaderMetrics(analytics.loaderLag()) +
    renderPlacementMetrics(placement) +
    renderMemoryMetrics({ analytics: analytics.memory(), duckdbLimit: config.analyticsMemoryMb * 1048576, prepareHeapUsed: prepareThreadsHeapBytes() });

  const consoleAssets = consoleHandler({ region: config.region, accountId: config.accountId });
  const pools = await IdentityPools.open(meta, clock, config.region, config.accountId, { ...DEFAULT_COGNITO_LIMITS, ...deps.cognitoLimits });
  const cognitoTokens = new CognitoTokens(meta, secrets, clock);
  const oidc = new Map(config.oidcProviders.map((c) => new OidcProvider(c, clock)).map((p) => [p.name, p]));
  const cognitoApi = cognitoService({ pools, iam, authorizer, tokens: cognitoTokens, oidc });
  const queryServices = iamServices(iam, authorizer, webIdentityFederation({ tokens: cognitoTokens, oidc, pools, iam }));
  const glueApi = glueService({
    catalog: catalogStore,
    authorizer,
    region: config.region,
    accountId: config.accountId,
    callerArn: (req: ApiRequest) => iam.keyOwner(req.caller!.accessKeyId)!.arn,
  });
  const consumerApi = consumerOperations(kinesisCore);
  const kinesisApi = kinesisService(kinesisCore, {
    rawOperations: consumerApi.rawOperations,
    operations: { ...consumerApi.operations, ...encryptionOperations(kinesisCore).operations },
  });
  // The Kinesis service as the protocol serves it; event-stream delivery calls it in process too.
  const kinesisLocal = { ...kinesisApi, authorize: kinesisAuthorizer(authorizer, kinesis, signer) };
  const firehoseApi = firehoseService({
    service: firehose,
    clock,
    kinesisStreamExists: (name) => kinesis.list().some((s) => s.name === name),
    passRole: (req, roleArn) => authorizer.passRole(req, roleArn, FIREHOSE_SERVICE_PRINCIPAL),
    assumeProblem: (roleArn, name) => assumeProblem(iam, roleArn, firehose.roleSource(name)),
  });
  const history = new HistoryJobs({
    db,
    driver: meta.driver,
    store: analytics,
    clock,
    dataDir: config.dataDir,
    buckets: config.buckets,
    retentionDays: config.retentionDays,
    ingestLog: producerLog,
    batchRecords: deps.historyBatchRecords,
    unavailable: config.clickhouseUrl ? HISTORY_IMPORT_CLICKHOUSE_MESSAGE : undefined,
    roleCheck: ({ appId, roleArn }) => {
      const source = { service: PINPOINT_SERVICE_PRINCIPAL, sourceArn: apps.arn(appId), sourceAccount: config.accountId };
      return (action, resource) => roleMayNot(iam, roleArn, source, action, resource);
    },
  });
  const pinpointApi = pinpointProtocol({
    apps,
    endpoints,
    events,
    eventStreams,
    authorizer,
    callerArn: (req: ApiRequest) => iam.keyOwner(req.caller!.accessKeyId)!.arn,
    deliveryHealth: (id, saved) => delivery.statusOf(id, saved),
    jobs: {
      jobs,
      accountId: config.accountId,
      roleProblem: (roleArn, appId) => assumeProblem(iam, roleArn, { service: PINPOINT_SERVICE_PRINCIPAL, sourceArn: apps.arn(appId), sourceAccount: config.accountId }),
    },
    analytics,
    clock,
    callerCognito: (req: ApiRequest) => {
      const w = req.caller ? iam.keyOwner(req.caller.accessKeyId)?.temporary?.webIdentity : undefined;
      return w?.poolId !== undefined ? { identityId: w.sub, poolId: w.poolId } : undefined;
    },
    guestAccess: (req: ApiRequest, appId: string) =>
      createGuestAccess({ pools, iam, authorizer, appArn: (id) => apps.arn(id) }, req, appId, publicUrl(req, serverUrl)),
    extraRoutes: [
      ...historyRoutes({ apps, authorizer, jobs: history }),
      ...queryRoutes({
        authorizer,
        engine: (req) => ({
          catalog,
          store: catalogStore,
          region: config.region,
          accountId: config.accountId,
          now: () => clock.now(),
          owner: iam.keyOwner(req.caller!.accessKeyId)?.arn,
          // Folder buckets are read in place; others through the store Firehose writes with.
          bucket: (b) => {
            const loc = bucketLocation(b, config.dataDir, config.buckets);
            return 'dir' in loc ? loc : { store: firehose.objects.resolve(`arn:aws:s3:::${bucketName(`arn:aws:s3:::${b}`)}`) };
          },
        }),
      }),
    ],
  });
  const operations: ApiInventory = {
    pinpoint: pinpointApi.routes,
    kinesis: [...Object.keys(kinesisApi.operations), ...Object.keys(kinesisApi.rawOperations ?? {})],
    firehose: Object.keys(firehoseApi.operations),
    iam: Object.keys(queryServices[0].actions),
    sts: Object.keys(queryServices[1].actions),
    cognito: Object.keys(cognitoApi.operations),
    glue: Object.keys(glueApi.operations),
  };
  const dispatch = createDispatcher({
    clock,
    lookupKey: iam.lookup,
    // Only a shared store has keys this node may not know yet (embedded lookups are synchronous).
    resolveKey: meta.driver.kind === 'postgres' ? (id) => iam.resolveKey(id) : undefined,
    query: queryProtocol(['iam', 'sts'], queryServices),
    jsonTargets: new Map([
      [KINESIS_TARGET_PREFIX, awsJsonProtocol(kinesisLocal)],
      [FIREHOSE_TARGET_PREFIX, awsJsonProtocol({ ...firehoseApi, authorize: firehoseAuthorizer(authorizer, firehose.registry) })],
      [COGNITO_TARGET_PREFIX, awsJsonProtocol(cognitoApi)],
      [GLUE_TARGET_PREFIX, awsJsonProtocol(glueApi)],
    ]),
    restJson: [{ prefix: '/v1/', protocol: pinpointApi }],
    receivers: new Map([[MESSAGING_EVENTS_PATH, messaging]]),
    open: consoleAssets,
    // /health is open and names no tenant; /metrics names apps and ARNs, so it takes the token.
    operator: operatorRoutes({ metricsToken: config.metricsToken, metrics, health: () => healthBody(logs.health(), analytics.loaderLag()) }),
  });
  // Before accepting events: a delivery checkpoint beyond the ingest log's end is reported and skipped past.
  await delivery.checkCheckpoints();
  const server = await listen(dispatch, { host: config.host, port: config.port, tls, httpPort: config.httpPort }, {
    headersTimeoutMs: config.headersTimeoutMs,
    bodyTimeoutMs: config.bodyTimeoutMs,
    keepAliveTimeoutMs: config.keepAliveTimeoutMs,
    maxConnections,
    maxUnverifiedBodyBytes: config.maxUnverifiedBodyBytes,
    http2MaxConcurrentStreams: config.http2MaxConcurrentStreams,
    http2MaxSessionMemoryMb: config.http2MaxSessionMemoryMb,
  });
  // The server's own deliveries take the plain port when there is one (no TLS to itself).
  serverUrl = server.httpUrl ?? server.url;
  // Workers start once the server listens: embedded destinations are reached through it.
  await delivery.startAll();
  // Import and export jobs a stop interrupted resume in the background.
  jobs.start();
  // History imports a stop or a crash interrupted go on from their last commit.
  history.resume().catch((e) => console.error('pinstream: resuming history imports failed', e));

  const certInfo = (m: TlsMaterial) => ({ names: m.names, validTo: m.validTo, fingerprint256: m.fingerprint256 });
  const running: Pinstream = {
    url: server.url,
    port: server.port,
    httpUrl: server.httpUrl,
    tls: tls && certInfo(tls),
    reloadTls() {
      const next = loadTlsMaterial(config);
      if (!next || !tls) throw new Error('TLS is not configured');
      server.reloadTls(next);
      tls = next;
      running.tls = certInfo(next);
      return running.tls;
    },
    admin,
    adminCreated: created,
    ingestLog,
    placement,
    logs,
    ingest: events,
    kinesis,
    kinesisData,
    delivery,
    firehose,
    jobs,
    analytics,
    history,
    messaging,
    unattributedLog,
    catalog,
    operations,
    httpStats: () => server.stats(),
    async close() {
      clearInterval(retention);
      await jobs.close();
      endpoints.close();
      await delivery.stopAll();
      // Hands every lease over at once (other nodes need not wait for them to expire).
      await placement.close();
      // Event-stream workers stop first (they put into Firehose); deliverers then flush once.
      await firehose.close();
      await firehoseBuild.close();
      await server.close();
      await events.close();
      await kinesis.close();
      await history.close();
      await analytics.close();
      await unattributedLog?.close();
      await ingestLog.close();
      await meta.close();
      await logs.close?.();
      db.close();
    },
  };
  return running;
}

/** PINSTREAM_CLICKHOUSE_URL answers, or the start stops naming it. */
async function clickhouseCheck(config: Config, deps: PinstreamDeps): Promise<void> {
  try {
    await checkClickHouse(config.clickhouseUrl!, deps.clickhouseCheckTimeoutMs);
  } catch (e) {
    throw new ConfigError(`PINSTREAM_CLICKHOUSE_URL: ${(e as Error).message}`, { cause: e });
  }
}

/** The JetStream log provider of PINSTREAM_NATS_URL; an unreachable NATS stops the start naming it. */
async function natsLogs(config: Config, clock: Clock, deps: PinstreamDeps): Promise<LogProvider> {
  try {
    return await JetStreamLogProvider.connect({
      servers: config.natsUrl!,
      replicas: config.natsReplicas,
      clock,
      prefix: deps.natsPrefix,
      connectTimeoutMs: deps.natsConnectTimeoutMs,
      report: deps.logReport,
    });
  } catch (e) {
    if (e instanceof NatsUnavailableError) throw new ConfigError(`PINSTREAM_NATS_URL: ${e.message}`, { cause: e });
    throw e;
  }
}

async function openPlacement(config: Config, logs: LogProvider, deps: PinstreamDeps): Promise<Placement> {
  if (!(logs instanceof JetStreamLogProvider)) return new LocalPlacement(config.nodeId);
  // One bucket per deployment prefix, so tests (and deployments) sharing a NATS do not share leases.
  const kv = await KvPlacement.bucket(new Kvm(logs.nc), { name: `${logs.streamPrefix}-leases`, replicas: config.natsReplicas ?? 1, ttlMs: deps.placement?.ttlMs });
  return new KvPlacement({ kv, nodeId: config.nodeId, ...deps.placement, report: deps.logReport ?? ((line) => console.error(`pinstream: ${line}`)) });
}

/**
 * The URL apps reach this server by: the scheme it listens with and the Host the request named
 * (behind a proxy or with DNS pointing AWS names here, that is the public name).
 */
function publicUrl(req: ApiRequest, serverUrl: string): string {
  const host = req.headers.host ?? req.headers[':authority'];
  const scheme = serverUrl.startsWith('https:') ? 'https' : 'http';
  return typeof host === 'string' && /^[A-Za-z0-9.:[\]-]+$/.test(host) ? `${scheme}://${host}` : serverUrl;
}

/** Re-learns the keys of recently accepted events so retries after a restart stay deduplicated. */
async function rebuildDedup(log: Log, dedup: Dedup, window: number, sinceMs: number): Promise<void> {
  if (window === 0) return;
  let offset = Math.max(log.startOffset(), log.endOffset() - window, await log.offsetForTimestamp(sinceMs));
  while (offset < log.endOffset()) {
    const { records, nextOffset } = await log.read(offset, { maxRecords: 10_000 });
    if (records.length === 0) break;
    for (const r of records) {
      const e = decodeIngestEntry(r.payload);
      dedup.add(Dedup.key(e.appId, e.endpointId, e.eventId));
    }
    offset = nextOffset;
  }
}
