// Test harness: a real Pinstream server on a random loopback port with its own temporary data
// directory, and official AWS SDK clients pointed at it.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PinpointClient } from '@aws-sdk/client-pinpoint';
import { loadConfig, type Config } from '../../src/config/config.js';
import { startPinstream, type Pinstream, type PinstreamDeps } from '../../src/server.js';
import type { Clock } from '../../src/clock.js';
import { TEST_METRICS_TOKEN } from './process.js';

export interface TestServer {
  server: Pinstream;
  dataDir: string;
  config: Config;
  pinpoint: PinpointClient;
  close(): Promise<void>;
}

export async function startTestServer(opts: { clock?: Clock; config?: Partial<Config>; dataDir?: string; deps?: PinstreamDeps } = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'pinstream-test-')));
  const config = loadConfig({}, { port: 0, dataDir, metricsToken: TEST_METRICS_TOKEN, ...opts.config });
  const server = await startPinstream(config, opts.clock, opts.deps);
  const pinpoint = pinpointClient(server);
  return {
    server,
    dataDir,
    config,
    pinpoint,
    async close() {
      pinpoint.destroy();
      await server.close();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function pinpointClient(server: { url: string; admin: { accessKeyId: string; secretAccessKey: string } }, extra: object = {}) {
  return new PinpointClient({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: server.admin,
    maxAttempts: 1,
    ...extra,
  });
}
