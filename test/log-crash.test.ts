import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, open, readdir, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogRecord } from '../src/log/log.js';
import { HEADER_BYTES, SegmentLog } from '../src/log/segment-log.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-logcrash-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const payloadFor = (n: number): Buffer => Buffer.from(`record ${n} `.padEnd(20 + (n % 40), '.'));

async function readAll(log: SegmentLog, from = 0): Promise<LogRecord[]> {
  const out: LogRecord[] = [];
  for (let next = from; ; ) {
    const r = await log.read(next, { maxRecords: 50 });
    if (r.records.length === 0) return out;
    out.push(...r.records);
    next = r.nextOffset;
  }
}

function assertRecords(records: LogRecord[], count: number): void {
  assert.equal(records.length, count);
  records.forEach((r, i) => {
    assert.equal(r.offset, i);
    assert.equal(r.payload.toString(), payloadFor(i).toString());
  });
}

async function lastSegment(dir: string): Promise<string> {
  const segs = (await readdir(dir)).filter((n) => n.endsWith('.log')).sort();
  return join(dir, segs[segs.length - 1]);
}

/** Writes 60 records in batches of 5 over several segments and closes the log. */
async function prepare(dir: string): Promise<void> {
  const log = await SegmentLog.open(dir, { segmentBytes: 1024 });
  for (let n = 0; n < 60; n += 5) await log.append([0, 1, 2, 3, 4].map((i) => payloadFor(n + i)));
  await log.close();
}

/** Reopens a damaged log and checks it holds exactly `survivors` records and keeps working. */
async function checkRecovered(dir: string, survivors: number): Promise<void> {
  let log = await SegmentLog.open(dir, { segmentBytes: 1024 });
  assert.equal(log.endOffset(), survivors);
  assertRecords(await readAll(log), survivors);
  const r = await log.append([payloadFor(survivors), payloadFor(survivors + 1)]);
  assert.equal(r.firstOffset, survivors);
  await log.close();
  log = await SegmentLog.open(dir, { segmentBytes: 1024 });
  assertRecords(await readAll(log), survivors + 2);
  await log.close();
}

const recordBytes = (n: number) => HEADER_BYTES + payloadFor(n).length;

test('torn tail: a few bytes cut off the last record', async (t) => {
  const dir = await tempDir(t);
  await prepare(dir);
  const seg = await lastSegment(dir);
  const size = (await stat(seg)).size;
  await truncate(seg, size - 3);
  await checkRecovered(dir, 59);
});

test('torn tail: only part of the last header is left', async (t) => {
  const dir = await tempDir(t);
  await prepare(dir);
  const seg = await lastSegment(dir);
  const size = (await stat(seg)).size;
  await truncate(seg, size - recordBytes(59) + 10);
  await checkRecovered(dir, 59);
});

test('torn tail: corrupted payload bytes fail the CRC', async (t) => {
  const dir = await tempDir(t);
  await prepare(dir);
  const seg = await lastSegment(dir);
  const size = (await stat(seg)).size;
  const fh = await open(seg, 'r+');
  await fh.write(Buffer.from('XX'), 0, 2, size - Math.floor(payloadFor(59).length / 2));
  await fh.close();
  await checkRecovered(dir, 59);
});

test('torn tail: damage inside the last segment drops everything after it', async (t) => {
  const dir = await tempDir(t);
  await prepare(dir);
  const seg = await lastSegment(dir);
  const base = Number(seg.slice(-24, -4));
  assert.ok(base > 0 && base < 57, 'fixture spans several segments');
  // Flip one byte of the offset field of record base + 1: a valid length but a wrong CRC.
  const fh = await open(seg, 'r+');
  await fh.write(Buffer.from([0x42]), 0, 1, recordBytes(base) + 9);
  await fh.close();
  await checkRecovered(dir, base + 1);
});

test('a damaged closed segment without its index refuses to open', async (t) => {
  const dir = await tempDir(t);
  await prepare(dir);
  const first = join(dir, '00000000000000000000.log');
  await unlink(first.replace('.log', '.idx'));
  const data = await readFile(first);
  data[HEADER_BYTES + 2] ^= 0xff;
  await writeFile(first, data);
  await assert.rejects(SegmentLog.open(dir), /corrupt record in closed segment/);
});

test('a failed sync rejects the waiting appends and stops the log', async (t) => {
  const dir = await tempDir(t);
  const log = await SegmentLog.open(dir);
  await log.append([payloadFor(0), payloadFor(1)]);
  const probe = await open(join(dir, 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
  await probe.close();
  const datasync = proto.datasync;
  proto.datasync = async () => {
    throw Object.assign(new Error('EIO: injected sync failure'), { code: 'EIO' });
  };
  try {
    const failing = log.append([payloadFor(2)]);
    const queued = log.append([payloadFor(3)]);
    await assert.rejects(failing, /injected/);
    await assert.rejects(queued, /injected/);
  } finally {
    proto.datasync = datasync;
  }
  assert.equal(log.endOffset(), 2);
  assert.equal((await log.read(0)).records.length, 2);
  assert.equal(await log.waitFor(2, 20), false);
  await assert.rejects(log.append([payloadFor(2)]), /write failure/);
  await log.close();

  // What reached the file before the failed sync may or may not survive; either way it is whole.
  const reopened = await SegmentLog.open(dir);
  assert.ok([2, 3, 4].includes(reopened.endOffset()), `end ${reopened.endOffset()}`);
  const all = await readAll(reopened);
  assert.equal(all.length, reopened.endOffset());
  all.forEach((r, i) => assert.equal(r.payload.toString(), payloadFor(i).toString()));
  await reopened.close();
});

const childScript = (moduleUrl: string) => `
import { SegmentLog } from ${JSON.stringify(moduleUrl)};
const log = await SegmentLog.open(process.argv[2], { segmentBytes: 32 * 1024 });
let batch = 0;
const payload = (b, i) => Buffer.from(\`b\${b}-\${i}-\`.padEnd(10 + ((b * 31 + i) % 150), 'p'));
async function writer() {
  for (;;) {
    const b = batch++;
    const n = 1 + (b % 7);
    const r = await log.append(Array.from({ length: n }, (_, i) => payload(b, i)));
    process.stdout.write(\`\${r.firstOffset} \${n} \${b}\\n\`);
  }
}
await Promise.all([writer(), writer(), writer(), writer()]);
`;

const childPayload = (b: number, i: number) => `b${b}-${i}-`.padEnd(10 + ((b * 31 + i) % 150), 'p');

/** Runs the writer child until ~1 s after its first acknowledgement, then SIGKILLs it. */
async function runAndKill(script: string, logDir: string): Promise<Map<number, string>> {
  const child = spawn(process.execPath, [script, logDir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (out === '') setTimeout(resolve, 1000);
      out += d.toString();
    });
    child.on('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
  });
  child.kill('SIGKILL');
  await exited;
  const acked = new Map<number, string>();
  // Only whole lines count: a line cut by the kill was never fully acknowledged to us.
  for (const line of out.split('\n').slice(0, -1)) {
    const [first, n, b] = line.split(' ').map(Number);
    for (let i = 0; i < n; i++) acked.set(first + i, childPayload(b, i));
  }
  return acked;
}

test('SIGKILL during appends loses no acknowledged record', async (t) => {
  const dir = await tempDir(t);
  const logDir = join(dir, 'log');
  const script = join(dir, 'writer.mjs');
  const moduleUrl = new URL('../src/log/segment-log.js', import.meta.url).href;
  await writeFile(script, childScript(moduleUrl));

  for (let round = 0; round < 2; round++) {
    const acked = await runAndKill(script, logDir);
    assert.ok(acked.size > 0, 'the writer acknowledged something before the kill');
    const log = await SegmentLog.open(logDir);
    const maxAcked = Math.max(...acked.keys());
    assert.ok(log.endOffset() > maxAcked, `end ${log.endOffset()} covers acked ${maxAcked}`);
    const all = await readAll(log);
    assert.equal(all.length, log.endOffset());
    all.forEach((r, i) => {
      assert.equal(r.offset, i);
      assert.match(r.payload.toString(), /^b\d+-\d+-p*$/);
    });
    for (const [offset, payload] of acked) assert.equal(all[offset].payload.toString(), payload, `offset ${offset}`);
    t.diagnostic(`round ${round}: ${acked.size} acked, ${all.length} in log`);
    const r = await log.append([Buffer.from('b0-0-pppp')]);
    assert.equal(r.firstOffset, all.length);
    assert.equal((await log.read(r.firstOffset)).records[0].payload.toString(), 'b0-0-pppp');
    await log.close();
  }
});
