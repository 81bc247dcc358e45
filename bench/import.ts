// `bench import`: endpoint import jobs at scale. Writes N endpoint definitions (1M by default) as
// JSON lines into a local bucket folder, once plain and once gzipped, starts the real server in
// this process on that data directory, and runs one CreateImportJob per file through the official
// Pinpoint SDK into a fresh project, polling GetImportJob until it finishes. Prints endpoints per
// minute for each, the ratio to the 100,000/min goal, and the process's peak RSS (the files are
// written and read as streams, so RSS stays bounded whatever N is).

import { createWriteStream, mkdtempSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { CreateAppCommand, CreateImportJobCommand, GetImportJobCommand, PinpointClient } from '@aws-sdk/client-pinpoint';
import { CreateRoleCommand, IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { loadConfig } from '../src/config/config.js';
import { startPinstream } from '../src/server.js';
import { fmtInt, fmtNum, table } from './stats.js';

const USAGE = `usage: npm run bench -- import [options]

  --count N     endpoints per file (default 1000000)
  --batch N     lines per transaction (default: the server's, 1000)`;

/** The goal: endpoints imported per minute. */
const GOAL_PER_MIN = 100_000;
const ACCOUNT = '000000000000';

function parseArgs(argv: string[]): { count: number; batch?: number } {
  const o: { count: number; batch?: number } = { count: 1_000_000 };
  for (let i = 0; i < argv.length; i++) {
    const v = Number(argv[i + 1]);
    if (argv[i] === '--count' && Number.isInteger(v) && v > 0) (o.count = v), i++;
    else if (argv[i] === '--batch' && Number.isInteger(v) && v > 0) (o.batch = v), i++;
    else throw new Error(`${USAGE}\n\nunknown or invalid argument ${argv[i]}`);
  }
  return o;
}

async function writeLines(file: string, count: number, gzip: boolean): Promise<void> {
  const out = createWriteStream(file);
  const sink = gzip ? createGzip() : out;
  if (gzip) (sink as ReturnType<typeof createGzip>).pipe(out);
  for (let i = 0; i < count; i++) {
    const line =
      JSON.stringify({
        Id: `ep-${i}`,
        ChannelType: 'EMAIL',
        Address: `user${i}@example.com`,
        Location: { Country: 'US', City: 'Seattle' },
        Demographic: { Platform: i % 2 ? 'iOS' : 'Android', AppVersion: '1.2.3' },
        Attributes: { plan: [i % 3 ? 'free' : 'pro'] },
        Metrics: { sessions: i % 50 },
        User: { UserId: `user-${i}` },
      }) + '\n';
    if (!sink.write(line)) await once(sink, 'drain');
  }
  sink.end();
  await once(out, 'finish');
}

export async function importBench(argv: string[]): Promise<number> {
  const opts = parseArgs(argv);
  const dataDir = mkdtempSync(join(tmpdir(), 'pinstream-bench-import-'));
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  try {
    const dir = join(dataDir, 'buckets', 'bench');
    mkdirSync(dir, { recursive: true });
    console.log(`writing ${fmtInt(opts.count)} endpoints as JSON lines, plain and gzipped…`);
    await writeLines(join(dir, 'plain.json'), opts.count, false);
    await writeLines(join(dir, 'gzip.json.gz'), opts.count, true);
    const sizes = { plain: statSync(join(dir, 'plain.json')).size, gzip: statSync(join(dir, 'gzip.json.gz')).size };
    peakRss = 0;
    const config = loadConfig({}, { port: 0, dataDir });
    const server = await startPinstream(config, undefined, { jobs: opts.batch ? { importBatchLines: opts.batch } : {} });
    const pinpoint = new PinpointClient({ endpoint: server.url, region: 'us-east-1', credentials: server.admin, maxAttempts: 1 });
    const iam = new IAMClient({ endpoint: server.url, region: 'us-east-1', credentials: server.admin, maxAttempts: 1 });
    const rows: string[][] = [];
    try {
      await iam.send(
        new CreateRoleCommand({
          RoleName: 'import',
          AssumeRolePolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Principal: { Service: 'pinpoint.amazonaws.com' }, Action: 'sts:AssumeRole' }] }),
        }),
      );
      await iam.send(
        new PutRolePolicyCommand({
          RoleName: 'import',
          PolicyName: 's3',
          PolicyDocument: JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: ['s3:GetObject', 's3:ListBucket'], Resource: 'arn:aws:s3:::bench*' }] }),
        }),
      );
      for (const [name, key] of [['JSON lines', 'plain.json'], ['JSON lines, gzip', 'gzip.json.gz']] as const) {
        const app = (await pinpoint.send(new CreateAppCommand({ CreateApplicationRequest: { Name: name } }))).ApplicationResponse!.Id!;
        const started = performance.now();
        const id = (
          await pinpoint.send(new CreateImportJobCommand({ ApplicationId: app, ImportJobRequest: { S3Url: `s3://bench/${key}`, Format: 'JSON', RoleArn: `arn:aws:iam::${ACCOUNT}:role/import` } }))
        ).ImportJobResponse!.Id!;
        let job;
        for (;;) {
          job = (await pinpoint.send(new GetImportJobCommand({ ApplicationId: app, JobId: id }))).ImportJobResponse!;
          if (job.JobStatus === 'COMPLETED' || job.JobStatus === 'FAILED') break;
          await new Promise((r) => setTimeout(r, 250));
        }
        const seconds = (performance.now() - started) / 1000;
        const perMin = (job.TotalProcessed! / seconds) * 60;
        rows.push([
          name,
          `${fmtNum(key === 'plain.json' ? sizes.plain / 2 ** 20 : sizes.gzip / 2 ** 20, 1)} MiB`,
          job.JobStatus!,
          fmtInt(job.TotalProcessed!),
          fmtInt(job.TotalFailures!),
          fmtNum(seconds, 1),
          fmtInt(perMin),
          fmtNum(perMin / GOAL_PER_MIN, 2),
        ]);
      }
    } finally {
      pinpoint.destroy();
      iam.destroy();
      await server.close();
    }
    console.log(table(['file', 'size', 'status', 'endpoints', 'failures', 'seconds', 'endpoints/min', `ratio to ${fmtInt(GOAL_PER_MIN)}/min`], rows));
    console.log(`peak RSS during the imports: ${fmtNum(peakRss / 2 ** 20, 0)} MiB`);
    return rows.every((r) => r[2] === 'COMPLETED') ? 0 : 1;
  } finally {
    clearInterval(sampler);
    rmSync(dataDir, { recursive: true, force: true });
  }
}
