// Event streams end to end against real processes: (1) a `pinstream start` child process is killed
// with SIGKILL while it delivers PutEvents load to its embedded Kinesis stream, restarted on the
// same data directory, and every acknowledged event must then be in the stream (at least once,
// per-endpoint order of first occurrences kept); (2) kinesalite (a separate Kinesis-compatible
// server) as a routed external destination: records read back from kinesalite itself.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { CreateAppCommand, PutEventsCommand, PutEventStreamCommand, type Event, type EventsBatch, type PinpointClient } from '@aws-sdk/client-pinpoint';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
} from '@aws-sdk/client-kinesis';
import { IAMClient } from '@aws-sdk/client-iam';
import { createPinpointRole } from './helpers/eventstream.js';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { pinpointClient, startTestServer, type TestServer } from './helpers/server.js';
import { spawnServer, waitForExit, type ServerProcess } from './helpers/process.js';
import { MAX_PUT_RECORDS_COUNT } from '../src/kinesis/limits.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Child processes and temp dirs to clean up whatever happens. */
const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const cleanups: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanups.splice(0)) {
    try {
      await c();
    } catch {
      /* best effort */
    }
  }
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await waitForExit(c);
    }
  }
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function track(p: ServerProcess): ServerProcess {
  children.add(p.child);
  return p;
}

async function waitActive(kinesis: KinesisClient, StreamName: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName }));
    if (s.StreamDescriptionSummary!.StreamStatus === 'ACTIVE') return;
    if (Date.now() > deadline) throw new Error(`stream ${StreamName} not ACTIVE after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** Reads a stream from TRIM_HORIZON on every shard, following NextShardIterator, until done() holds (bounded). */
async function readUntil(
  kinesis: KinesisClient,
  StreamName: string,
  done: (records: Array<{ pk: string; json: any }>) => boolean,
  timeoutMs: number,
): Promise<Array<{ pk: string; json: any; shard: string }>> {
  const shards = (await kinesis.send(new ListShardsCommand({ StreamName }))).Shards!;
  const iters = new Map<string, string>();
  for (const s of shards) {
    const it = await kinesis.send(new GetShardIteratorCommand({ StreamName, ShardId: s.ShardId, ShardIteratorType: 'TRIM_HORIZON' }));
    iters.set(s.ShardId!, it.ShardIterator!);
  }
  const out: Array<{ pk: string; json: any; shard: string }> = [];
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let got = 0;
    for (const [id, it] of iters) {
      const r = await kinesis.send(new GetRecordsCommand({ ShardIterator: it }));
      if (r.NextShardIterator) iters.set(id, r.NextShardIterator);
      for (const rec of r.Records!) {
        out.push({ pk: rec.PartitionKey!, json: JSON.parse(Buffer.from(rec.Data!).toString('utf8')), shard: id });
        got++;
      }
    }
    if (done(out) || Date.now() > deadline) return out;
    if (got === 0) await sleep(100);
  }
}

const createRole = (iam: IAMClient, name: string, resource: string) => createPinpointRole(iam, name, { resource });

describe('kill -9 during event-stream delivery', () => {
  const CLIENTS = 4;
  const ENDPOINTS_PER_REQUEST = 5;
  const EVENTS_PER_ENDPOINT = 10; // 50 events per request
  const ENDPOINTS = 300;
  const KILL_AFTER_ACKED_EVENTS = 3_000;
  const MAX_LOAD_MS = 15_000;
  const ACCOUNT = '000000000000';
  const STREAM = 'e2e-crash';

  test('every acknowledged event reaches the stream after a restart; duplicates only from the redelivery window', { timeout: 60_000 }, async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-e2e-crash-'));
    dirs.add(dataDir);
    const first = track(await spawnServer({ PINSTREAM_DATA_DIR: dataDir }));
    const creds = { accessKeyId: first.accessKeyId, secretAccessKey: first.secretAccessKey! };
    const pinpoint = pinpointClient({ url: first.url, admin: creds });
    const kinesis1 = new KinesisClient({ endpoint: first.url, region: 'us-east-1', credentials: creds, maxAttempts: 1 });
    const iam = new IAMClient({ endpoint: first.url, region: 'us-east-1', credentials: creds, maxAttempts: 1 });
    cleanups.push(() => pinpoint.destroy(), () => kinesis1.destroy(), () => iam.destroy());

    const app = (await pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'e2e-crash' } }))).ApplicationResponse!.Id!;
    await kinesis1.send(new CreateStreamCommand({ StreamName: STREAM, ShardCount: 2 }));
    await waitActive(kinesis1, STREAM);
    const streamArn = `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${STREAM}`;
    await createRole(iam, 'e2e-crash-role', streamArn);
    await pinpoint.send(
      new PutEventStreamCommand({
        ApplicationId: app,
        WriteEventStream: { DestinationStreamArn: streamArn, RoleArn: `arn:aws:iam::${ACCOUNT}:role/e2e-crash-role` },
      }),
    );

    // Endpoint i belongs to client i % CLIENTS only, so each endpoint's events are sent (and
    // acknowledged) in one order, by one client, one request at a time.
    const endpoints = Array.from({ length: ENDPOINTS }, () => randomUUID());
    /** seq → {endpoint, client, request number}, for acknowledged events. */
    const acked = new Map<string, { endpoint: string; client: number; req: number; ackedAt: number }>();
    const sentAt: number[] = []; // send time of every event sent (acked or not)
    let killed = false;
    let killedAt = 0;
    let failedRequests = 0;
    const started = Date.now();
    const loop = async (client: number) => {
      const mine = endpoints.filter((_, i) => i % CLIENTS === client);
      let req = 0;
      let cursor = 0;
      while (!killed && Date.now() - started < MAX_LOAD_MS) {
        req++;
        const BatchItem: Record<string, EventsBatch> = {};
        const meta = new Map<string, { endpoint: string; client: number; req: number }>();
        const now = new Date().toISOString();
        for (let e = 0; e < ENDPOINTS_PER_REQUEST; e++) {
          const endpoint = mine[cursor++ % mine.length];
          const Events: Record<string, Event> = {};
          for (let i = 0; i < EVENTS_PER_ENDPOINT; i++) {
            const seq = `${client}-${req}-${e}-${i}`;
            Events[randomUUID()] = { EventType: 'e2e.crash', Timestamp: now, Attributes: { seq } };
            meta.set(seq, { endpoint, client, req });
            sentAt.push(Date.now());
          }
          BatchItem[endpoint] = { Endpoint: {}, Events };
        }
        try {
          const r = await pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem } }));
          const ackedAt = Date.now();
          for (const [endpoint, item] of Object.entries(BatchItem)) {
            const res = r.EventsResponse!.Results![endpoint].EventsItemResponse!;
            for (const [id, ev] of Object.entries(item.Events!)) {
              assert.deepEqual(res[id], { StatusCode: 202, Message: 'Accepted' });
              const seq = ev.Attributes!.seq;
              acked.set(seq, { ...meta.get(seq)!, ackedAt });
            }
          }
        } catch (e) {
          failedRequests++;
          if (killed) return;
          // Not the kill: stop the load and fail with the server's own words.
          killed = true;
          throw new Error(`PutEvents failed before the kill (client ${client}, request ${req}): ${(e as Error).message}\n${first.output().slice(-3000)}`);
        }
        if (!killed && acked.size >= KILL_AFTER_ACKED_EVENTS) {
          killed = true;
          killedAt = Date.now();
          first.child.kill('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => loop(c)));
    if (!killed) {
      killed = true;
      killedAt = Date.now();
      first.child.kill('SIGKILL');
    }
    const exit = await waitForExit(first.child);
    assert.equal(exit.signal, 'SIGKILL');
    assert.ok(acked.size >= KILL_AFTER_ACKED_EVENTS, `only ${acked.size} events acknowledged in ${MAX_LOAD_MS} ms`);

    // Restart on the same data directory; delivery resumes from the stored checkpoint.
    const second = track(await spawnServer({ PINSTREAM_DATA_DIR: dataDir }));
    const creds2 = { accessKeyId: second.accessKeyId, secretAccessKey: second.secretAccessKey ?? creds.secretAccessKey };
    const kinesis2 = new KinesisClient({ endpoint: second.url, region: 'us-east-1', credentials: creds2, maxAttempts: 1 });
    cleanups.push(() => kinesis2.destroy());

    const readStart = Date.now();
    const missing = () => {
      let n = 0;
      for (const seq of acked.keys()) if (!seenCount.has(seq)) n++;
      return n;
    };
    const seenCount = new Map<string, number>();
    let counted = 0;
    const records = await readUntil(
      kinesis2,
      STREAM,
      (recs) => {
        for (; counted < recs.length; counted++) {
          const seq = recs[counted].json.attributes?.seq as string;
          seenCount.set(seq, (seenCount.get(seq) ?? 0) + 1);
        }
        return missing() === 0;
      },
      30_000,
    );

    // Every record is a well-formed event of this app, keyed by its endpoint.
    for (const r of records) {
      assert.equal(r.json.application.app_id, app);
      assert.equal(r.json.event_type, 'e2e.crash');
      assert.equal(r.json.client.client_id, r.pk);
    }
    if (missing() > 0) t.diagnostic(`after ${Date.now() - readStart} ms, restarted server output:\n${second.output().slice(-3000)}`);
    const lost = [...acked.keys()].filter((s) => !seenCount.has(s));
    assert.equal(lost.length, 0, `${lost.length} of ${acked.size} acknowledged events are not in the stream, e.g. ${lost.slice(0, 5).join(', ')}`);

    // Records of events acknowledged, and of in-flight ones the server wrote before dying.
    let duplicates = 0;
    let duplicatedEvents = 0;
    for (const n of seenCount.values()) {
      if (n > 1) {
        duplicates += n - 1;
        duplicatedEvents++;
      }
    }
    const unackedDelivered = [...seenCount.keys()].filter((s) => !acked.has(s)).length;
    const sentLastSecond = sentAt.filter((at) => at >= killedAt - 1000).length;
    t.diagnostic(
      `acked=${acked.size} sent=${sentAt.length} failedRequests=${failedRequests} records=${records.length} ` +
        `distinct=${seenCount.size} unackedButDelivered=${unackedDelivered} duplicateRecords=${duplicates} ` +
        `duplicatedEvents=${duplicatedEvents} sentInLastSecondBeforeKill=${sentLastSecond}`,
    );
    // Each record is an event that was sent; no unknown events.
    for (const seq of seenCount.keys()) assert.match(seq, /^\d+-\d+-\d+-\d+$/);
    assert.ok(seenCount.size <= sentAt.length);
    // The worker persists its checkpoint after every accepted PutRecords call and has one call in
    // flight, so a crash redelivers at most that call: one batch (<= 500 records), and never more
    // than what was sent in the last second before the kill.
    assert.ok(duplicates <= MAX_PUT_RECORDS_COUNT, `${duplicates} duplicate records (more than one PutRecords batch)`);
    assert.ok(duplicates <= sentLastSecond, `${duplicates} duplicate records, ${sentLastSecond} events sent in the last second`);
    assert.equal(duplicatedEvents, duplicates, 'a redelivered event is redelivered once');

    // Per endpoint, the first occurrences follow the order the owning client's requests were acknowledged.
    const lastReq = new Map<string, number>();
    const firstSeen = new Set<string>();
    const byShard = new Map<string, string[]>();
    for (const r of records) {
      const seq = r.json.attributes.seq as string;
      if (firstSeen.has(seq)) continue;
      firstSeen.add(seq);
      const a = acked.get(seq);
      if (!a) continue;
      assert.equal(r.pk, a.endpoint, `event ${seq} keyed by its endpoint`);
      const prev = lastReq.get(a.endpoint) ?? 0;
      assert.ok(a.req >= prev, `endpoint ${a.endpoint}: request ${a.req} of client ${a.client} first seen after request ${prev}`);
      lastReq.set(a.endpoint, a.req);
      byShard.set(r.shard, [...(byShard.get(r.shard) ?? []), a.endpoint]);
    }
    // One endpoint, one shard.
    const shardOf = new Map<string, string>();
    for (const [shard, eps] of byShard) {
      for (const ep of eps) {
        assert.equal(shardOf.get(ep) ?? shard, shard, `endpoint ${ep} in two shards`);
        shardOf.set(ep, shard);
      }
    }

    second.child.kill('SIGTERM');
    await waitForExit(second.child);
  });
});

describe('kinesalite as an external destination', () => {
  const REMOTE_ACCOUNT = '123456789012';
  const PEER = fileURLToPath(new URL('../bench/kinesalite-peer.js', import.meta.url));

  async function startKinesalite(): Promise<{ child: ChildProcess; url: string }> {
    const child = spawn(process.execPath, [PEER], { env: { ...process.env, KINESALITE_PATH: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`kinesalite did not start:\n${out}`)), 15_000);
      child.stdout!.on('data', () => {
        const m = /kinesalite listening on (\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`kinesalite exited with ${code}:\n${out}`));
      });
    });
    return { child, url };
  }

  test('events are delivered to a routed kinesalite stream as Pinpoint event-stream records', { timeout: 60_000 }, async () => {
    const peer = await startKinesalite();
    const remote = new KinesisClient({
      endpoint: peer.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'fake', secretAccessKey: 'fake' },
      requestHandler: new NodeHttpHandler(),
      maxAttempts: 1,
    });
    cleanups.push(() => remote.destroy());
    const name = `ext-${randomUUID().slice(0, 8)}`;
    await remote.send(new CreateStreamCommand({ StreamName: name, ShardCount: 2 }));
    await waitActive(remote, name);

    const ts: TestServer = await startTestServer({
      config: {
        destinations: [
          {
            arn: `arn:aws:kinesis:us-east-1:${REMOTE_ACCOUNT}:stream/*`,
            endpoint: peer.url,
            region: 'us-east-1',
            accessKeyId: 'fake',
            secretAccessKey: 'fake',
          },
        ],
      },
    });
    cleanups.unshift(() => ts.close());
    const pinpoint: PinpointClient = ts.pinpoint;
    const app = (await pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'ext' } }))).ApplicationResponse!.Id!;
    const arn = `arn:aws:kinesis:us-east-1:${REMOTE_ACCOUNT}:stream/${name}`;
    const put = await pinpoint.send(
      new PutEventStreamCommand({
        ApplicationId: app,
        WriteEventStream: { DestinationStreamArn: arn, RoleArn: `arn:aws:iam::${REMOTE_ACCOUNT}:role/pinpoint-events` },
      }),
    );
    assert.equal(put.EventStream!.DestinationStreamArn, arn);

    const endpoints = Array.from({ length: 6 }, () => randomUUID());
    const expected = new Map<string, { endpoint: string; type: string }>();
    const BatchItem: Record<string, EventsBatch> = {};
    endpoints.forEach((endpoint, e) => {
      const Events: Record<string, Event> = {};
      for (let i = 0; i < 5; i++) {
        const seq = `${e}-${i}`;
        const type = i % 2 ? 'purchase' : 'level.up';
        Events[randomUUID()] = { EventType: type, Timestamp: new Date().toISOString(), Attributes: { seq } };
        expected.set(seq, { endpoint, type });
      }
      BatchItem[endpoint] = { Endpoint: {}, Events };
    });
    const r = await pinpoint.send(new PutEventsCommand({ ApplicationId: app, EventsRequest: { BatchItem } }));
    for (const endpoint of endpoints) {
      for (const res of Object.values(r.EventsResponse!.Results![endpoint].EventsItemResponse!)) assert.equal(res.Message, 'Accepted');
    }

    // Read back from kinesalite itself, not through Pinstream.
    const records = await readUntil(remote, name, (recs) => recs.length >= expected.size, 20_000);
    assert.equal(records.length, expected.size, 'each event delivered once');
    const seen = new Set<string>();
    for (const rec of records) {
      const j = rec.json;
      const want = expected.get(j.attributes.seq);
      assert.ok(want, `unexpected record ${JSON.stringify(j)}`);
      seen.add(j.attributes.seq);
      assert.equal(j.event_type, want.type);
      assert.equal(j.event_version, '3.1');
      assert.equal(j.application.app_id, app);
      assert.equal(j.client.client_id, want.endpoint);
      assert.equal(rec.pk, want.endpoint, 'partition key is the endpoint id');
      assert.equal(typeof j.arrival_timestamp, 'number');
    }
    assert.equal(seen.size, expected.size);
  });

  test('a destination in another account with no matching route is a 400 naming PINSTREAM_DESTINATIONS', { timeout: 30_000 }, async () => {
    const ts = await startTestServer({
      config: { destinations: [{ arn: `arn:aws:kinesis:us-east-1:${REMOTE_ACCOUNT}:stream/*`, endpoint: 'http://127.0.0.1:9', region: 'us-east-1' }] },
    });
    cleanups.unshift(() => ts.close());
    const app = (await ts.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'unrouted' } }))).ApplicationResponse!.Id!;
    await assert.rejects(
      ts.pinpoint.send(
        new PutEventStreamCommand({
          ApplicationId: app,
          WriteEventStream: {
            DestinationStreamArn: 'arn:aws:kinesis:us-east-1:999999999999:stream/elsewhere',
            RoleArn: 'arn:aws:iam::999999999999:role/pinpoint-events',
          },
        }),
      ),
      (e: any) => {
        assert.equal(e.name, 'BadRequestException', e.message);
        assert.equal(e.$metadata.httpStatusCode, 400);
        assert.match(e.message, /PINSTREAM_DESTINATIONS/);
        assert.match(e.message, /999999999999/);
        return true;
      },
    );
  });
});
