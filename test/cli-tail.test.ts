// `pinstream stream tail` as a user runs it: the real CLI in a child process against a test server,
// with credentials only from the AWS_* environment (profile files point at /dev/null). Records are
// put with the official SDK; the tail's stdout lines, stderr and exit code are checked.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateStreamCommand, KinesisClient, PutRecordCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { startTestServer, type TestServer } from './helpers/server.js';
import { CLI, waitForExit } from './helpers/process.js';
import { renderData } from '../src/cli/tail.js';

const RUN_TIMEOUT_MS = 20_000;

interface Tail {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when stderr matches, rejects after `ms` or if the process exits first. */
  waitStderr(re: RegExp, ms?: number): Promise<void>;
  /** Exit code; kills the process and rejects after `ms`. */
  exit(ms?: number): Promise<number | null>;
}

describe('pinstream stream tail', () => {
  let t: TestServer;
  let kinesis: KinesisClient;
  let env: NodeJS.ProcessEnv;

  const tail = (...args: string[]): Tail => {
    const child = spawn(process.execPath, [CLI, 'stream', 'tail', ...args, '--endpoint', t.server.url], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const exited = waitForExit(child);
    return {
      child,
      stdout: () => out,
      stderr: () => err,
      async waitStderr(re, ms = RUN_TIMEOUT_MS) {
        const deadline = Date.now() + ms;
        while (!re.test(err)) {
          if (child.exitCode !== null) throw new Error(`tail exited ${child.exitCode} before printing ${re}\nstderr: ${err}`);
          if (Date.now() > deadline) throw new Error(`tail did not print ${re} within ${ms} ms\nstderr: ${err}`);
          await sleep(20);
        }
      },
      async exit(ms = RUN_TIMEOUT_MS) {
        const timer = setTimeout(() => child.kill('SIGKILL'), ms);
        const r = await exited;
        clearTimeout(timer);
        if (r.signal === 'SIGKILL') throw new Error(`tail did not exit within ${ms} ms\nstdout: ${out}\nstderr: ${err}`);
        return r.code;
      },
    };
  };

  const createStream = async (name: string, shards: number) => {
    await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
  };

  before(async () => {
    t = await startTestServer();
    kinesis = new KinesisClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin, maxAttempts: 1 });
    const base: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_') && !k.startsWith('PINSTREAM_')) base[k] = v;
    env = {
      ...base,
      AWS_ACCESS_KEY_ID: t.server.admin.accessKeyId,
      AWS_SECRET_ACCESS_KEY: t.server.admin.secretAccessKey,
      AWS_REGION: 'us-east-1',
      AWS_CONFIG_FILE: '/dev/null',
      AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
      AWS_EC2_METADATA_DISABLED: 'true',
    };
  });
  after(async () => {
    kinesis.destroy();
    await t.close();
  });

  test('from trim-horizon: JSON records decoded, text as text, prefix, --max ends it with 0', async () => {
    await createStream('tail-mixed', 2);
    const run = tail('tail-mixed', '--from', 'trim-horizon', '--max', '5');
    const json = [{ n: 1, page: '/a' }, { n: 2, tags: ['x', 'y'] }, { n: 3, big: 'x' }];
    const put = await kinesis.send(
      new PutRecordsCommand({
        StreamName: 'tail-mixed',
        Records: [
          // Spacing in the payload must not survive; digits must (no re-serialisation of numbers).
          { PartitionKey: 'json-key', Data: Buffer.from(JSON.stringify(json[0], null, 2)) },
          { PartitionKey: 'json-key', Data: Buffer.from(JSON.stringify(json[1])) },
          { PartitionKey: 'json-key', Data: Buffer.from('{ "n": 3, "big": 123456789012345678901234567890 }\n') },
        ],
      }),
    );
    assert.equal(put.FailedRecordCount, 0);
    await kinesis.send(new PutRecordCommand({ StreamName: 'tail-mixed', PartitionKey: 'text-key', Data: Buffer.from('hello, world') }));
    await kinesis.send(new PutRecordCommand({ StreamName: 'tail-mixed', PartitionKey: 'text-key', Data: Buffer.from('ünïcødé text\n') }));

    const code = await run.exit();
    assert.equal(code, 0, `exit ${code}\nstderr: ${run.stderr()}`);
    const lines = run.stdout().trimEnd().split('\n');
    assert.equal(lines.length, 5, run.stdout());
    const parsed = lines.map((l) => {
      const m = /^(shardId-\d{12}) (\d+) (\S+) (.*)$/.exec(l);
      assert.ok(m, `line does not match "shardId seq partitionKey data": ${l}`);
      return { shard: m[1], seq: BigInt(m[2]), key: m[3], data: m[4] };
    });
    const byKey = (k: string) => parsed.filter((p) => p.key === k);
    // Records of one partition key come from one shard, in order.
    assert.deepEqual(
      byKey('json-key').map((p) => p.data),
      ['{"n":1,"page":"/a"}', '{"n":2,"tags":["x","y"]}', '{"n":3,"big":123456789012345678901234567890}'],
    );
    assert.deepEqual(
      byKey('text-key').map((p) => p.data),
      ['hello, world', 'ünïcødé text'],
    );
    for (const k of ['json-key', 'text-key']) {
      const g = byKey(k);
      assert.equal(new Set(g.map((p) => p.shard)).size, 1);
      for (let i = 1; i < g.length; i++) assert.ok(g[i].seq > g[i - 1].seq, `sequence numbers of ${k} increase`);
    }
  });

  test('from latest: records put before the start are not printed, later ones are', async () => {
    await createStream('tail-latest', 2);
    for (const d of ['old-1', 'old-2', 'old-3']) {
      await kinesis.send(new PutRecordCommand({ StreamName: 'tail-latest', PartitionKey: d, Data: Buffer.from(d) }));
    }
    const run = tail('tail-latest', '--from', 'latest', '--max', '1', '--raw');
    await run.waitStderr(/tailing stream "tail-latest"/);
    // Several poll intervals: an old record would have shown up by now.
    await sleep(1_500);
    assert.equal(run.stdout(), '', 'nothing printed before a new record arrives');
    assert.equal(run.child.exitCode, null, 'still running');
    await kinesis.send(new PutRecordCommand({ StreamName: 'tail-latest', PartitionKey: 'new', Data: Buffer.from('new-1') }));
    const code = await run.exit();
    assert.equal(code, 0, `exit ${code}\nstderr: ${run.stderr()}`);
    assert.equal(run.stdout(), 'new-1\n');
  });

  test('an unknown stream: exit 1 with a message naming it', async () => {
    const run = tail('no-such-stream', '--max', '1');
    const code = await run.exit();
    assert.equal(code, 1);
    assert.match(run.stderr(), /stream "no-such-stream" not found/);
    assert.equal(run.stdout(), '');
  });

  test('usage errors exit 2', async () => {
    const run = tail('--from', 'yesterday', 's');
    assert.equal(await run.exit(), 2);
    assert.match(run.stderr(), /--from must be latest or trim-horizon/);
  });

  test('renderData: JSON compacted textually, printable text, else base64', () => {
    const b = (s: string) => Buffer.from(s);
    assert.equal(renderData(b('[1, 2.50, {"a" : "x y"}]')), '[1,2.50,{"a":"x y"}]');
    assert.equal(renderData(b('{"s":"with \\" quote and  spaces"}')), '{"s":"with \\" quote and  spaces"}');
    assert.equal(renderData(b('{not json')), '{not json');
    assert.equal(renderData(b('plain\r\n')), 'plain');
    assert.equal(renderData(b('two\nlines')), Buffer.from('two\nlines').toString('base64'));
    assert.equal(renderData(Buffer.from([0xff, 0x00, 0x01])), '/wAB');
    assert.equal(renderData(new Uint8Array(0)), '');
  });
});
