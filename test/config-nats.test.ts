// PINSTREAM_NATS_URL / natsUrl and PINSTREAM_NATS_REPLICAS / natsReplicas: parsed and validated once
// at start (src/config/config.ts); unset means embedded logs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, MAX_NATS_REPLICAS, MAX_NATS_SERVERS, loadConfig } from '../src/config/config.js';

const env = (vars: Record<string, string>) => ({ PINSTREAM_CONFIG: '', ...vars });

test('unset: embedded logs', () => {
  const c = loadConfig(env({}));
  assert.equal(c.natsUrl, undefined);
  assert.equal(c.natsReplicas, undefined);
});

test('PINSTREAM_NATS_URL: comma-separated servers; replicas 3 with three or more servers, else 1', () => {
  assert.deepEqual(loadConfig(env({ PINSTREAM_NATS_URL: 'nats://127.0.0.1:4222' })), { ...loadConfig(env({})), natsUrl: ['nats://127.0.0.1:4222'], natsReplicas: 1 });
  const c = loadConfig(env({ PINSTREAM_NATS_URL: 'nats://a:4222, b:4223,tls://c.example.com:4224' }));
  assert.deepEqual(c.natsUrl, ['nats://a:4222', 'b:4223', 'tls://c.example.com:4224']);
  assert.equal(c.natsReplicas, 3);
  assert.equal(loadConfig(env({ PINSTREAM_NATS_URL: 'a:1,b:2,c:3', PINSTREAM_NATS_REPLICAS: '1' })).natsReplicas, 1);
  assert.equal(loadConfig(env({ PINSTREAM_NATS_URL: 'a:1', PINSTREAM_NATS_REPLICAS: String(MAX_NATS_REPLICAS) })).natsReplicas, MAX_NATS_REPLICAS);
});

test('bad NATS settings fail the start naming the setting, without echoing credentials', () => {
  const bad = (vars: Record<string, string>, re: RegExp) => assert.throws(() => loadConfig(env(vars)), (e: unknown) => e instanceof ConfigError && re.test((e as Error).message));
  bad({ PINSTREAM_NATS_URL: 'http://a:4222' }, /PINSTREAM_NATS_URL: server 1 must be nats:\/\/host:port/);
  bad({ PINSTREAM_NATS_URL: 'a:4222,,b:4222' }, /PINSTREAM_NATS_URL: server 2/);
  bad({ PINSTREAM_NATS_URL: 'a:70000' }, /port 70000, outside 1-65535/);
  bad({ PINSTREAM_NATS_URL: Array.from({ length: MAX_NATS_SERVERS + 1 }, (_, i) => `h${i}:4222`).join(',') }, /1-64 NATS servers/);
  bad({ PINSTREAM_NATS_URL: 'a:1', PINSTREAM_NATS_REPLICAS: '0' }, /PINSTREAM_NATS_REPLICAS must be an integer from 1 to 5/);
  bad({ PINSTREAM_NATS_URL: 'a:1', PINSTREAM_NATS_REPLICAS: String(MAX_NATS_REPLICAS + 1) }, /from 1 to 5/);
  bad({ PINSTREAM_NATS_REPLICAS: '3' }, /PINSTREAM_NATS_REPLICAS is set but PINSTREAM_NATS_URL is not/);
  assert.throws(
    () => loadConfig(env({ PINSTREAM_NATS_URL: 'nats://user:s3cret@a:4222' })),
    (e: unknown) => e instanceof ConfigError && !(e as Error).message.includes('s3cret') && /credentials/.test((e as Error).message),
  );
});

test('natsUrl in the configuration file: a string or an array', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-config-nats-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'pinstream.json');
  await writeFile(file, JSON.stringify({ natsUrl: ['nats://x:1', 'nats://y:2'], natsReplicas: 2 }));
  const c = loadConfig({ PINSTREAM_CONFIG: file });
  assert.deepEqual([c.natsUrl, c.natsReplicas], [['nats://x:1', 'nats://y:2'], 2]);
  await writeFile(file, JSON.stringify({ natsUrl: 'x:1' }));
  assert.deepEqual(loadConfig({ PINSTREAM_CONFIG: file }).natsUrl, ['x:1']);
  await writeFile(file, JSON.stringify({ natsUrl: [] }));
  assert.throws(() => loadConfig({ PINSTREAM_CONFIG: file }), /natsUrl must be 1-64 NATS servers/);
  // The environment wins over the file.
  assert.deepEqual(loadConfig({ PINSTREAM_CONFIG: file, PINSTREAM_NATS_URL: 'z:3' }).natsUrl, ['z:3']);
});
