// Configuration: loadConfig's defaults, PINSTREAM_* variables, the JSON file and its precedence, and
// errors that name the bad setting; the admin key from configuration and its persistence; and the
// `pinstream start` command as an operator sees it (banner, secret shown once, SIGTERM, exit 2).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { CreateAppCommand, GetAppsCommand, PutEventStreamCommand } from '@aws-sdk/client-pinpoint';
import { CreateStreamCommand, DescribeStreamSummaryCommand } from '@aws-sdk/client-kinesis';
import { IAMClient } from '@aws-sdk/client-iam';
import {
  ConfigError,
  DEFAULTS,
  DEFAULT_BODY_TIMEOUT_MS,
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS,
  DEFAULT_HTTP2_MAX_SESSION_MEMORY_MB,
  DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
  DEFAULT_MAX_UNVERIFIED_BODY_BYTES,
  MIN_MAX_UNVERIFIED_BODY_BYTES,
  MIN_METRICS_TOKEN_LENGTH,
  OPERATOR_RESERVE_CONNECTIONS,
  DEFAULT_INGEST_THREADS,
  NODE_ID_PATTERN,
  DEFAULT_CONSUMER_THREADS,
  MAX_CONSUMER_THREADS,
  MAX_DEFAULT_INGEST_THREADS,
  MAX_INGEST_THREADS,
  DEFAULT_ANALYTICS_MEMORY_MB,
  MAX_ANALYTICS_MEMORY_MB,
  MAX_DEFAULT_ANALYTICS_MEMORY_MB,
  MIN_ANALYTICS_MEMORY_MB,
  DEFAULT_ANALYTICS_NICE,
  loadConfig,
  type Config,
} from '../src/config/config.js';
import { MAX_NICE, MIN_NICE } from '../src/threads/priority.js';
import { CONNECTION_SHARE_OF_FILE_DESCRIPTORS, MIN_FILE_DESCRIPTORS_FOR_FILES, fileDescriptorLimit, resolveMaxConnections } from '../src/http/limits.js';
import { startPinstream } from '../src/server.js';
import { pinpointClient, startTestServer } from './helpers/server.js';
import { kinesisClient } from './helpers/kinesis.js';
import { createPinpointRole } from './helpers/eventstream.js';
import { signedFetch } from './helpers/signed.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const ADMIN_ID = 'PSAKCONFIGURED00KEY1';
const ADMIN_SECRET = 'configured-secret-0123456789abcdef';

/** Asserts fn throws a ConfigError whose message contains every fragment. */
function assertConfigError(fn: () => unknown, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.name, 'ConfigError');
    for (const f of fragments) assert.ok(e.message.includes(f), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(f)}`);
    return true;
  });
}

describe('loadConfig', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pinstream-config-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const file = async (name: string, content: unknown) => {
    const p = join(dir, name);
    await writeFile(p, typeof content === 'string' ? content : JSON.stringify(content));
    return p;
  };

  test('defaults', () => {
    const c = loadConfig({});
    const expected: Partial<Config> = {
      host: '127.0.0.1',
      port: 4580,
      dataDir: './data',
      region: 'us-east-1',
      accountId: '000000000000',
      adminAccessKeyId: undefined,
      adminSecretAccessKey: undefined,
      logFsync: true,
      dedupWindowEvents: 1_000_000,
      retentionDays: 90,
    };
    for (const [k, v] of Object.entries(expected)) assert.deepEqual(c[k as keyof Config], v, `default of ${k}`);
    // Whatever settings exist, no environment means exactly the documented DEFAULTS.
    assert.deepEqual(c, { ...DEFAULTS, adminAccessKeyId: undefined, adminSecretAccessKey: undefined });
  });

  test('PINSTREAM_* variables are honoured', () => {
    const c = loadConfig({
      PINSTREAM_PORT: '8123',
      PINSTREAM_HOST: '0.0.0.0',
      PINSTREAM_DATA_DIR: '/var/lib/pinstream',
      PINSTREAM_REGION: 'eu-west-2',
      PINSTREAM_ACCOUNT_ID: '123456789012',
      PINSTREAM_ADMIN_ACCESS_KEY_ID: ADMIN_ID,
      PINSTREAM_ADMIN_SECRET_ACCESS_KEY: ADMIN_SECRET,
    });
    assert.equal(c.port, 8123);
    assert.equal(c.host, '0.0.0.0');
    assert.equal(c.dataDir, '/var/lib/pinstream');
    assert.equal(c.region, 'eu-west-2');
    assert.equal(c.accountId, '123456789012');
    assert.equal(c.adminAccessKeyId, ADMIN_ID);
    assert.equal(c.adminSecretAccessKey, ADMIN_SECRET);
  });

  test(`PINSTREAM_CONSUMER_THREADS: 0 (delivery on the request thread) to ${MAX_CONSUMER_THREADS}; by default 1 with a second core, else 0`, () => {
    assert.equal(loadConfig({}).consumerThreads, DEFAULT_CONSUMER_THREADS);
    assert.equal(DEFAULT_CONSUMER_THREADS, availableParallelism() > 1 ? 1 : 0);
    assert.equal(loadConfig({ PINSTREAM_CONSUMER_THREADS: '0' }).consumerThreads, 0);
    assert.equal(loadConfig({ PINSTREAM_CONSUMER_THREADS: String(MAX_CONSUMER_THREADS) }).consumerThreads, MAX_CONSUMER_THREADS);
    assertConfigError(() => loadConfig({ PINSTREAM_CONSUMER_THREADS: String(MAX_CONSUMER_THREADS + 1) }), 'PINSTREAM_CONSUMER_THREADS');
    assertConfigError(() => loadConfig({ PINSTREAM_CONSUMER_THREADS: '-1' }), 'PINSTREAM_CONSUMER_THREADS');
    assertConfigError(() => loadConfig({ PINSTREAM_CONSUMER_THREADS: '1.5' }), 'PINSTREAM_CONSUMER_THREADS');
  });

  test(`PINSTREAM_INGEST_THREADS: 0 (all on the request thread) to ${MAX_INGEST_THREADS}; by default one per core beyond the first, 1 to ${MAX_DEFAULT_INGEST_THREADS}`, () => {
    assert.equal(loadConfig({}).ingestThreads, DEFAULT_INGEST_THREADS);
    assert.equal(DEFAULT_INGEST_THREADS, Math.max(1, Math.min(MAX_DEFAULT_INGEST_THREADS, availableParallelism() - 1)));
    assert.equal(loadConfig({ PINSTREAM_INGEST_THREADS: '0' }).ingestThreads, 0);
    assert.equal(loadConfig({ PINSTREAM_INGEST_THREADS: String(MAX_INGEST_THREADS) }).ingestThreads, MAX_INGEST_THREADS);
    assertConfigError(() => loadConfig({ PINSTREAM_INGEST_THREADS: String(MAX_INGEST_THREADS + 1) }), 'PINSTREAM_INGEST_THREADS');
    assertConfigError(() => loadConfig({ PINSTREAM_INGEST_THREADS: '-1' }), 'PINSTREAM_INGEST_THREADS');
    assertConfigError(() => loadConfig({ PINSTREAM_INGEST_THREADS: 'two' }), 'PINSTREAM_INGEST_THREADS');
  });

  test('PINSTREAM_POSTGRES_URL / postgresUrl: unset by default (SQLite); a postgres:// URL naming host and database; anything else a ConfigError naming PostgreSQL', async () => {
    assert.equal(loadConfig({}).postgresUrl, undefined);
    assert.equal(loadConfig({ PINSTREAM_POSTGRES_URL: 'postgresql://u:p@db.internal:6432/pinstream' }).postgresUrl, 'postgresql://u:p@db.internal:6432/pinstream');
    for (const [bad, why] of [
      ['db.internal/pinstream', /not a URL/],
      ['http://db.internal/pinstream', /not postgres: or postgresql:/],
      ['postgres://db.internal', /names no PostgreSQL database/],
    ] as const) {
      assert.throws(() => loadConfig({ PINSTREAM_POSTGRES_URL: bad }), (e: unknown) => e instanceof ConfigError && /^PINSTREAM_POSTGRES_URL: /.test((e as Error).message) && why.test((e as Error).message));
    }
    const dir = await mkdtemp(join(tmpdir(), 'pinstream-pgcfg-'));
    try {
      const file = join(dir, 'pinstream.json');
      await writeFile(file, JSON.stringify({ postgresUrl: 'postgres://db/meta' }));
      assert.equal(loadConfig({ PINSTREAM_CONFIG: file }).postgresUrl, 'postgres://db/meta');
      await writeFile(file, JSON.stringify({ postgresUrl: 'ftp://db/meta' }));
      assert.throws(() => loadConfig({ PINSTREAM_CONFIG: file }), /pinstream\.json: postgresUrl: .*PostgreSQL/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test(`PINSTREAM_ANALYTICS_MEMORY_MB: ${MIN_ANALYTICS_MEMORY_MB} to ${MAX_ANALYTICS_MEMORY_MB}; by default an eighth of the machine's memory, at most ${MAX_DEFAULT_ANALYTICS_MEMORY_MB}`, () => {
    assert.equal(loadConfig({}).analyticsMemoryMb, DEFAULT_ANALYTICS_MEMORY_MB);
    assert.equal(DEFAULT_ANALYTICS_MEMORY_MB, Math.max(MIN_ANALYTICS_MEMORY_MB, Math.min(MAX_DEFAULT_ANALYTICS_MEMORY_MB, Math.floor(totalmem() / 1048576 / 8))));
    assert.equal(loadConfig({ PINSTREAM_ANALYTICS_MEMORY_MB: String(MIN_ANALYTICS_MEMORY_MB) }).analyticsMemoryMb, MIN_ANALYTICS_MEMORY_MB);
    assert.equal(loadConfig({ PINSTREAM_ANALYTICS_MEMORY_MB: '4096' }).analyticsMemoryMb, 4096);
    assertConfigError(() => loadConfig({ PINSTREAM_ANALYTICS_MEMORY_MB: String(MIN_ANALYTICS_MEMORY_MB - 1) }), 'PINSTREAM_ANALYTICS_MEMORY_MB');
    assertConfigError(() => loadConfig({ PINSTREAM_ANALYTICS_MEMORY_MB: String(MAX_ANALYTICS_MEMORY_MB + 1) }), 'PINSTREAM_ANALYTICS_MEMORY_MB');
    assertConfigError(() => loadConfig({ PINSTREAM_ANALYTICS_MEMORY_MB: 'lots' }), 'PINSTREAM_ANALYTICS_MEMORY_MB');
  });

  test(`PINSTREAM_ANALYTICS_NICE: ${MIN_NICE} to ${MAX_NICE}, default ${DEFAULT_ANALYTICS_NICE}`, () => {
    assert.equal(loadConfig({}).analyticsNice, DEFAULT_ANALYTICS_NICE);
    assert.equal(loadConfig({ PINSTREAM_ANALYTICS_NICE: '0' }).analyticsNice, 0);
    assert.equal(loadConfig({ PINSTREAM_ANALYTICS_NICE: String(MAX_NICE) }).analyticsNice, MAX_NICE);
    assertConfigError(() => loadConfig({ PINSTREAM_ANALYTICS_NICE: String(MAX_NICE + 1) }), 'PINSTREAM_ANALYTICS_NICE');
    assertConfigError(() => loadConfig({ PINSTREAM_ANALYTICS_NICE: '-1' }), 'PINSTREAM_ANALYTICS_NICE');
    assertConfigError(() => loadConfig({ PINSTREAM_ANALYTICS_NICE: 'low' }), 'PINSTREAM_ANALYTICS_NICE');
  });

  test('PINSTREAM_PORT=0 (any free port) is allowed', () => {
    assert.equal(loadConfig({ PINSTREAM_PORT: '0' }).port, 0);
  });

  test('an empty variable counts as unset', () => {
    assert.equal(loadConfig({ PINSTREAM_PORT: '', PINSTREAM_HOST: '' }).port, 4580);
  });

  for (const bad of ['abc', '70000', '-1', '80.5']) {
    test(`PINSTREAM_PORT=${bad} is a ConfigError naming PINSTREAM_PORT`, () => {
      assertConfigError(() => loadConfig({ PINSTREAM_PORT: bad }), 'PINSTREAM_PORT', bad);
    });
  }

  test('a bad account id is a ConfigError naming PINSTREAM_ACCOUNT_ID', () => {
    assertConfigError(() => loadConfig({ PINSTREAM_ACCOUNT_ID: '12345' }), 'PINSTREAM_ACCOUNT_ID', '12 digits');
    assertConfigError(() => loadConfig({ PINSTREAM_ACCOUNT_ID: '12345678901a' }), 'PINSTREAM_ACCOUNT_ID');
  });

  test('a bad region is a ConfigError naming PINSTREAM_REGION', () => {
    assertConfigError(() => loadConfig({ PINSTREAM_REGION: 'mars' }), 'PINSTREAM_REGION');
  });

  test('a malformed admin key id is a ConfigError naming PINSTREAM_ADMIN_ACCESS_KEY_ID', () => {
    assertConfigError(
      () => loadConfig({ PINSTREAM_ADMIN_ACCESS_KEY_ID: 'lower-case', PINSTREAM_ADMIN_SECRET_ACCESS_KEY: ADMIN_SECRET }),
      'PINSTREAM_ADMIN_ACCESS_KEY_ID',
    );
  });

  test('half an admin key (id without secret, or secret without id) is a ConfigError naming the missing one', () => {
    // Otherwise the server silently ignores the setting and generates a different key.
    assertConfigError(() => loadConfig({ PINSTREAM_ADMIN_ACCESS_KEY_ID: ADMIN_ID }), 'PINSTREAM_ADMIN_SECRET_ACCESS_KEY');
    assertConfigError(() => loadConfig({ PINSTREAM_ADMIN_SECRET_ACCESS_KEY: ADMIN_SECRET }), 'PINSTREAM_ADMIN_ACCESS_KEY_ID');
  });

  test('overrides win over the environment', () => {
    assert.equal(loadConfig({ PINSTREAM_PORT: '8123' }, { port: 9000 }).port, 9000);
  });

  test('PINSTREAM_CONFIG names a JSON file that is read; the environment wins over it', async () => {
    const p = await file('pinstream.json', { port: 7001, region: 'ap-southeast-2', accountId: '111122223333', dataDir: '/srv/ps' });
    const fromFile = loadConfig({ PINSTREAM_CONFIG: p });
    assert.equal(fromFile.port, 7001);
    assert.equal(fromFile.region, 'ap-southeast-2');
    assert.equal(fromFile.accountId, '111122223333');
    assert.equal(fromFile.dataDir, '/srv/ps');
    assert.equal(fromFile.host, '127.0.0.1');

    const mixed = loadConfig({ PINSTREAM_CONFIG: p, PINSTREAM_PORT: '7002', PINSTREAM_REGION: 'us-west-2' });
    assert.equal(mixed.port, 7002);
    assert.equal(mixed.region, 'us-west-2');
    assert.equal(mixed.accountId, '111122223333');
  });

  test('an unknown key in the file is a ConfigError naming the key', async () => {
    const p = await file('typo.json', { port: 7001, prot: 7002 });
    assertConfigError(() => loadConfig({ PINSTREAM_CONFIG: p }), '"prot"', p);
  });

  test('a bad value in the file is a ConfigError naming the file and the key', async () => {
    const p = await file('badport.json', { port: 'eighty' });
    assertConfigError(() => loadConfig({ PINSTREAM_CONFIG: p }), p, 'port', 'eighty');
  });

  test('a missing PINSTREAM_CONFIG file is a ConfigError naming it', () => {
    const missing = join(dir, 'does-not-exist.json');
    assertConfigError(() => loadConfig({ PINSTREAM_CONFIG: missing }), 'PINSTREAM_CONFIG', missing);
  });

  test('a file that is not JSON, or not an object, is a ConfigError', async () => {
    const notJson = await file('broken.json', '{"port": ');
    assertConfigError(() => loadConfig({ PINSTREAM_CONFIG: notJson }), notJson);
    const arr = await file('array.json', '[1,2]');
    assertConfigError(() => loadConfig({ PINSTREAM_CONFIG: arr }), 'JSON object');
  });

  test('./pinstream.json in the working directory is read when PINSTREAM_CONFIG is unset', async () => {
    const cwdDir = await mkdtemp(join(dir, 'cwd-'));
    await writeFile(join(cwdDir, 'pinstream.json'), JSON.stringify({ port: 7100 }));
    const prev = process.cwd();
    process.chdir(cwdDir);
    try {
      assert.equal(loadConfig({}).port, 7100);
    } finally {
      process.chdir(prev);
    }
  });
});

describe('admin key', () => {
  test('a configured admin key (PINSTREAM_ADMIN_*) signs requests', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-admin-'));
    const config = loadConfig(
      { PINSTREAM_ADMIN_ACCESS_KEY_ID: ADMIN_ID, PINSTREAM_ADMIN_SECRET_ACCESS_KEY: ADMIN_SECRET },
      { port: 0, dataDir },
    );
    const server = await startPinstream(config);
    const client = pinpointClient({ url: server.url, admin: { accessKeyId: ADMIN_ID, secretAccessKey: ADMIN_SECRET } });
    try {
      assert.equal(server.adminCreated, false);
      assert.deepEqual(server.admin, { accessKeyId: ADMIN_ID, secretAccessKey: ADMIN_SECRET });
      const out = await client.send(new GetAppsCommand({}));
      assert.equal(out.$metadata.httpStatusCode, 200);
      assert.deepEqual(out.ApplicationsResponse?.Item, []);
    } finally {
      client.destroy();
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  test('the same through startTestServer overrides; a wrong secret for that id is refused', async () => {
    const t = await startTestServer({ config: { adminAccessKeyId: ADMIN_ID, adminSecretAccessKey: ADMIN_SECRET } });
    const wrong = pinpointClient({ url: t.server.url, admin: { accessKeyId: ADMIN_ID, secretAccessKey: ADMIN_SECRET + 'x' } });
    try {
      const out = await t.pinpoint.send(new GetAppsCommand({}));
      assert.equal(out.$metadata.httpStatusCode, 200);
      await assert.rejects(wrong.send(new GetAppsCommand({})), (e: any) => {
        assert.equal(e.name, 'InvalidSignatureException');
        assert.equal(e.$metadata.httpStatusCode, 403);
        return true;
      });
    } finally {
      wrong.destroy();
      await t.close();
    }
  });

  test('a generated admin key persists across a restart with the same data directory', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pinstream-persist-'));
    try {
      const first = await startTestServer({ dataDir });
      // A copy: the SDK client stamps bookkeeping ($source) onto the credentials object it is given.
      const admin = { accessKeyId: first.server.admin.accessKeyId, secretAccessKey: first.server.admin.secretAccessKey };
      try {
        assert.equal(first.server.adminCreated, true);
        assert.match(admin.accessKeyId, /^[A-Z0-9]{16,128}$/);
        assert.ok(admin.secretAccessKey.length >= 16);
        assert.equal((await first.pinpoint.send(new GetAppsCommand({}))).$metadata.httpStatusCode, 200);
      } finally {
        await first.close();
      }
      const second = await startTestServer({ dataDir });
      try {
        assert.equal(second.server.adminCreated, false);
        assert.equal(second.server.admin.accessKeyId, admin.accessKeyId);
        assert.equal(second.server.admin.secretAccessKey, admin.secretAccessKey);
        assert.equal((await second.pinpoint.send(new GetAppsCommand({}))).$metadata.httpStatusCode, 200);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

// ------------------------------------------------------------------------------------------------
// The `pinstream start` command

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PINSTREAM_')) env[k] = v;
  return { ...env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...extra };
}

interface Started {
  stdout: () => string;
  stderr: () => string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop: () => Promise<number | null>;
}

/** Starts `pinstream start` and resolves once the banner line matching `until` has been printed. */
function startCli(cwd: string, env: NodeJS.ProcessEnv, until: RegExp): Promise<Started> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'start'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let exited: { code: number | null } | undefined;
    const exitWaiters: Array<(c: number | null) => void> = [];
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pinstream start printed no banner in time.\nstdout: ${out}\nstderr: ${err}`));
    }, 15_000);
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (until.test(out)) {
        clearTimeout(guard);
        resolve({
          stdout: () => out,
          stderr: () => err,
          stop: () =>
            new Promise((res) => {
              if (exited) return res(exited.code);
              exitWaiters.push(res);
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.on('exit', (code) => {
      exited = { code };
      for (const w of exitWaiters) w(code);
      clearTimeout(guard);
      if (!until.test(out)) reject(new Error(`pinstream start exited with ${code}.\nstdout: ${out}\nstderr: ${err}`));
    });
  });
}

describe('pinstream start', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pinstream-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('first start prints URL, region, account and the admin key with its secret; the second only the key id', async () => {
    const dataDir = join(dir, 'data');
    const env = cleanEnv({ PINSTREAM_PORT: '0', PINSTREAM_DATA_DIR: dataDir });

    const first = await startCli(dir, env, /admin secret access key: \S+/);
    let keyId: string;
    let secret: string;
    try {
      const out = first.stdout();
      const url = /listening on (http:\/\/127\.0\.0\.1:(\d+))/.exec(out);
      assert.ok(url, out);
      assert.notEqual(Number(url[2]), 0);
      assert.match(out, /region us-east-1/);
      assert.match(out, /account 000000000000/);
      keyId = /admin access key id: (\S+)/.exec(out)?.[1] ?? '';
      secret = /admin secret access key: (\S+)/.exec(out)?.[1] ?? '';
      assert.match(keyId, /^[A-Z0-9]{16,128}$/);
      assert.ok(secret.length >= 16, out);

      // The printed URL is the real one and the printed key works.
      const health = await fetch(`${url[1]}/health`);
      assert.equal(health.status, 200);
      const client = pinpointClient({ url: url[1], admin: { accessKeyId: keyId, secretAccessKey: secret } });
      try {
        assert.equal((await client.send(new GetAppsCommand({}))).$metadata.httpStatusCode, 200);
      } finally {
        client.destroy();
      }
    } finally {
      assert.equal(await first.stop(), 0, `stderr: ${first.stderr()}`);
    }

    const second = await startCli(dir, env, /admin access key id: \S+\n/);
    try {
      const out = second.stdout();
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      assert.ok(url, out);
      // Also lets the process finish the tick that installs its SIGTERM handler (it prints the
      // banner first; a signal sent the instant the banner appears can still kill it outright).
      assert.equal((await fetch(`${url[1]}/health`)).status, 200);
      assert.equal(/admin access key id: (\S+)/.exec(out)?.[1], keyId);
      assert.ok(!out.includes(secret), `the secret was printed again:\n${out}`);
      assert.doesNotMatch(out, /secret access key/);
    } finally {
      assert.equal(await second.stop(), 0, `stderr: ${second.stderr()}`);
    }
  });

  test('start prints no Node.js version warning of the AWS SDK, and notes an end-of-life Node.js only on 20', async () => {
    // An event stream makes the server build an AWS SDK client at start (its delivery worker),
    // which is where the SDK prints its notice on Node.js 20.
    const dataDir = join(dir, 'data-eventstream');
    const t = await startTestServer({ dataDir });
    try {
      const kinesis = kinesisClient(t.server);
      const iam = new IAMClient({ endpoint: t.server.url, region: 'us-east-1', credentials: t.server.admin });
      try {
        await kinesis.send(new CreateStreamCommand({ StreamName: 'warn-check', ShardCount: 1 }));
        const arn = (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: 'warn-check' }))).StreamDescriptionSummary!.StreamARN!;
        await createPinpointRole(iam, 'warn-check-role', { resource: arn });
        const app = await t.pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: 'warn-check' } }));
        await t.pinpoint.send(
          new PutEventStreamCommand({
            ApplicationId: app.ApplicationResponse!.Id!,
            WriteEventStream: { DestinationStreamArn: arn, RoleArn: 'arn:aws:iam::000000000000:role/warn-check-role' },
          }),
        );
      } finally {
        kinesis.destroy();
        iam.destroy();
      }
    } finally {
      await t.server.close();
    }
    const env = cleanEnv({ PINSTREAM_PORT: '0', PINSTREAM_DATA_DIR: dataDir });
    delete env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED;
    const started = await startCli(dir, env, /admin access key id: \S+\n/);
    try {
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(started.stdout())![1];
      const status = await signedFetch(url, { method: 'GET', path: '/v1/eventstreams/status', credentials: t.server.admin });
      assert.equal(status.status, 200, status.text);
      assert.match(status.text, /warn-check/, 'the delivery worker (an SDK client) runs');
      const eol = Number(process.versions.node.split('.')[0]) === 20;
      if (eol) assert.match(started.stdout(), /past its end of life; Pinstream is tested on Node\.js 20, 22, 24/);
      else assert.doesNotMatch(started.stdout(), /end of life/);
    } finally {
      assert.equal(await started.stop(), 0, `stderr: ${started.stderr()}`);
    }
    assert.doesNotMatch(started.stderr(), /NodeVersionSupportWarning|Warning/, started.stderr());
  });

  test('PINSTREAM_PORT=abc exits 2 and names PINSTREAM_PORT on stderr', async () => {
    const env = cleanEnv({ PINSTREAM_PORT: 'abc', PINSTREAM_DATA_DIR: join(dir, 'unused') });
    const { code, stderr, stdout } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [CLI, 'start'], { cwd: dir, env, timeout: 15_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as any).code ?? null) : 0, stdout, stderr });
      });
    });
    assert.equal(code, 2, `stdout: ${stdout}\nstderr: ${stderr}`);
    assert.match(stderr, /PINSTREAM_PORT/);
    assert.match(stderr, /abc/);
    assert.doesNotMatch(stdout, /listening/);
  });

  /** `pinstream start` with PINSTREAM_POSTGRES_URL set to `url`: its exit code and output. */
  const startWithPostgres = (url: string) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const env = cleanEnv({ PINSTREAM_POSTGRES_URL: url, PINSTREAM_PORT: '0', PINSTREAM_DATA_DIR: join(dir, 'pg-unused') });
      execFile(process.execPath, [CLI, 'start'], { cwd: dir, env, timeout: 30_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as any).code ?? null) : 0, stdout, stderr });
      });
    });

  test('PINSTREAM_POSTGRES_URL naming a PostgreSQL nobody answers at: exit 2 naming PostgreSQL, never the password', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const { code, stdout, stderr } = await startWithPostgres(`postgres://pinstream:hunter2secret@127.0.0.1:${port}/meta`);
    assert.equal(code, 2, `stdout: ${stdout}\nstderr: ${stderr}`);
    assert.match(stderr, new RegExp(`PostgreSQL at 127\\.0\\.0\\.1:${port}/meta is unreachable`));
    assert.doesNotMatch(stderr + stdout, /hunter2secret/);
    assert.doesNotMatch(stdout, /listening/);
  });

  test('a PINSTREAM_POSTGRES_URL that is not a PostgreSQL URL: exit 2 naming the variable', async () => {
    const { code, stdout, stderr } = await startWithPostgres('mysql://u:hunter2secret@db/meta');
    assert.equal(code, 2, `stdout: ${stdout}\nstderr: ${stderr}`);
    assert.match(stderr, /configuration error: PINSTREAM_POSTGRES_URL: .*PostgreSQL/);
    assert.doesNotMatch(stderr, /hunter2secret/);
  });
});

describe('HTTP limits and the metrics token (issue 12)', () => {
  test('defaults are the named constants', () => {
    const c = loadConfig({});
    assert.equal(c.headersTimeoutMs, DEFAULT_HEADERS_TIMEOUT_MS);
    assert.equal(DEFAULT_HEADERS_TIMEOUT_MS, 10_000, 'headers within 10 s');
    assert.equal(c.bodyTimeoutMs, DEFAULT_BODY_TIMEOUT_MS);
    assert.equal(c.keepAliveTimeoutMs, DEFAULT_KEEP_ALIVE_TIMEOUT_MS);
    assert.equal(c.maxConnections, 0, 'derived from the file-descriptor limit');
    assert.equal(c.maxUnverifiedBodyBytes, DEFAULT_MAX_UNVERIFIED_BODY_BYTES);
    assert.equal(c.http2MaxConcurrentStreams, DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS);
    assert.equal(c.http2MaxSessionMemoryMb, DEFAULT_HTTP2_MAX_SESSION_MEMORY_MB);
    assert.equal(c.metricsToken, undefined);
  });

  test('each is read from PINSTREAM_* and from the file', async () => {
    const env = {
      PINSTREAM_HEADERS_TIMEOUT_MS: '2500',
      PINSTREAM_BODY_TIMEOUT_MS: '30000',
      PINSTREAM_KEEP_ALIVE_TIMEOUT_MS: '5000',
      PINSTREAM_MAX_CONNECTIONS: '2000',
      PINSTREAM_MAX_UNVERIFIED_BODY_BYTES: String(64 * 1024 * 1024),
      PINSTREAM_HTTP2_MAX_CONCURRENT_STREAMS: '50',
      PINSTREAM_HTTP2_MAX_SESSION_MEMORY_MB: '16',
      PINSTREAM_METRICS_TOKEN: 'a-long-enough-metrics-token',
    };
    const c = loadConfig(env);
    assert.deepEqual(
      [c.headersTimeoutMs, c.bodyTimeoutMs, c.keepAliveTimeoutMs, c.maxConnections, c.maxUnverifiedBodyBytes, c.http2MaxConcurrentStreams, c.http2MaxSessionMemoryMb, c.metricsToken],
      [2500, 30000, 5000, 2000, 64 * 1024 * 1024, 50, 16, 'a-long-enough-metrics-token'],
    );
    const dir = await mkdtemp(join(tmpdir(), 'pinstream-config-http-'));
    try {
      const p = join(dir, 'pinstream.json');
      await writeFile(p, JSON.stringify({ headersTimeoutMs: 3000, maxConnections: 500, metricsToken: 'file-metrics-token-0123' }));
      const f = loadConfig({ PINSTREAM_CONFIG: p });
      assert.deepEqual([f.headersTimeoutMs, f.maxConnections, f.metricsToken], [3000, 500, 'file-metrics-token-0123']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  for (const [name, bad] of [
    ['PINSTREAM_HEADERS_TIMEOUT_MS', '0'],
    ['PINSTREAM_HEADERS_TIMEOUT_MS', '600001'],
    ['PINSTREAM_BODY_TIMEOUT_MS', 'soon'],
    ['PINSTREAM_KEEP_ALIVE_TIMEOUT_MS', '-1'],
    ['PINSTREAM_MAX_CONNECTIONS', '-5'],
    ['PINSTREAM_MAX_UNVERIFIED_BODY_BYTES', String(MIN_MAX_UNVERIFIED_BODY_BYTES - 1)],
    ['PINSTREAM_HTTP2_MAX_CONCURRENT_STREAMS', '0'],
    ['PINSTREAM_HTTP2_MAX_SESSION_MEMORY_MB', '0'],
  ]) {
    test(`${name}=${bad} is a ConfigError naming ${name}`, () => {
      assertConfigError(() => loadConfig({ [name]: bad }), name, bad);
    });
  }

  test(`PINSTREAM_MAX_CONNECTIONS at or below the ${OPERATOR_RESERVE_CONNECTIONS} reserved connections is a ConfigError`, () => {
    assertConfigError(() => loadConfig({ PINSTREAM_MAX_CONNECTIONS: String(OPERATOR_RESERVE_CONNECTIONS) }), 'PINSTREAM_MAX_CONNECTIONS', 'reserved');
    assert.equal(loadConfig({ PINSTREAM_MAX_CONNECTIONS: String(OPERATOR_RESERVE_CONNECTIONS + 1) }).maxConnections, OPERATOR_RESERVE_CONNECTIONS + 1);
  });

  test('a metrics token too short, or with spaces, is a ConfigError that does not print it', () => {
    for (const bad of ['short-token', 'has a space in it somewhere']) {
      assertConfigError(() => loadConfig({ PINSTREAM_METRICS_TOKEN: bad }), 'PINSTREAM_METRICS_TOKEN', String(MIN_METRICS_TOKEN_LENGTH));
      assert.throws(() => loadConfig({ PINSTREAM_METRICS_TOKEN: bad }), (e: Error) => !e.message.includes(bad));
    }
  });

  test('the connection cap: three quarters of the descriptor limit by default; a configured cap the limit cannot hold is refused', () => {
    assert.equal(resolveMaxConnections(0, 1024), Math.floor(1024 * CONNECTION_SHARE_OF_FILE_DESCRIPTORS));
    assert.equal(resolveMaxConnections(900, 1024), 900);
    assert.throws(() => resolveMaxConnections(1024 - MIN_FILE_DESCRIPTORS_FOR_FILES + 1, 1024), (e: Error) => e instanceof ConfigError && /PINSTREAM_MAX_CONNECTIONS is 961.*ulimit -n.*1024/.test(e.message));
    assert.throws(() => resolveMaxConnections(0, 16), (e: Error) => e instanceof ConfigError && /too low/.test(e.message));
    assert.ok(fileDescriptorLimit() > 0);
  });

  test('pinstream start with a PINSTREAM_MAX_CONNECTIONS above the descriptor limit exits 2 naming it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pinstream-cli-conns-'));
    try {
      const env = cleanEnv({ PINSTREAM_PORT: '0', PINSTREAM_DATA_DIR: join(dir, 'data'), PINSTREAM_MAX_CONNECTIONS: '10000000' });
      const { code, stderr, stdout } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [CLI, 'start'], { cwd: dir, env, timeout: 15_000 }, (err, stdout, stderr) => {
          resolve({ code: err ? ((err as any).code ?? null) : 0, stdout, stderr });
        });
      });
      assert.equal(code, 2, `stdout: ${stdout}\nstderr: ${stderr}`);
      assert.match(stderr, /PINSTREAM_MAX_CONNECTIONS is 10000000.*ulimit -n/);
      assert.doesNotMatch(stdout, /listening/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test('PINSTREAM_NODE_ID: defaults to the host name in the node-id alphabet; a bad one is refused', () => {
  assert.match(loadConfig({}).nodeId, NODE_ID_PATTERN);
  assert.equal(loadConfig({ PINSTREAM_NODE_ID: 'node-2.eu' }).nodeId, 'node-2.eu');
  for (const bad of ['a b', 'x'.repeat(65), 'n/1', 'ü']) assert.throws(() => loadConfig({ PINSTREAM_NODE_ID: bad }), /PINSTREAM_NODE_ID must be 1 to 64/);
});

test('PINSTREAM_MASTER_KEY_FILE: must exist and hold a 32-byte base64 key, checked at load', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-keyfile-'));
  try {
    const good = join(dir, 'good.key');
    writeFileSync(good, randomBytes(32).toString('base64') + '\n');
    assert.equal(loadConfig({ PINSTREAM_MASTER_KEY_FILE: good }).masterKeyFile, good);
    assert.equal(loadConfig({}).masterKeyFile, undefined);
    assert.throws(() => loadConfig({ PINSTREAM_MASTER_KEY_FILE: join(dir, 'missing.key') }), /PINSTREAM_MASTER_KEY_FILE: cannot read .*missing\.key \(ENOENT\)/);
    const short = join(dir, 'short.key');
    writeFileSync(short, randomBytes(16).toString('base64'));
    assert.throws(() => loadConfig({ PINSTREAM_MASTER_KEY_FILE: short }), /does not hold a 32-byte key in base64/);
    const junk = join(dir, 'junk.key');
    writeFileSync(junk, 'not a key at all, but 44 characters long!!!');
    assert.throws(() => loadConfig({ PINSTREAM_MASTER_KEY_FILE: junk }), /does not hold a 32-byte key in base64/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
