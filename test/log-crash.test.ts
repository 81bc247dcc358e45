import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, open, readdir, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { crc32c } from '@node-rs/crc32';
import { join } from 'node:path';
import type { LogRecord } from '../src/log/log.js';
import { HEADER_BYTES, SegmentLog } from '../src/log/segment-log.js';
import { SEGMENT_HEADER_BYTES } from '../src/log/format.js';
import { eio, faultyFs } from './helpers/faults.js';

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

/**
 * A torn tail is what a crash in the middle of a write leaves: bytes of a record that was never
 * acknowledged. The log's high-water mark (written at close) knows every acknowledged offset, so
 * a cut that ends before it is loss, not a torn write; these tests model the crash by removing it.
 */
async function asIfCrashedMidWrite(dir: string, ackedEnd: number): Promise<void> {
  await rm(join(dir, 'log.hwm'), { force: true });
  // The end mark in the segment header is rewritten after each round's records: it had not moved yet.
  const seg = await lastSegment(dir);
  const fh = await open(seg, 'r+');
  const header = Buffer.alloc(48);
  await fh.read(header, 0, 48, 0);
  header.writeDoubleLE(ackedEnd, 32);
  header.writeUInt32LE(crc32c(header.subarray(32, 40), header.readUInt32LE(8)), 40);
  await fh.write(header, 32, 16, 32);
  await fh.close();
}

/** Records `from..to-1` except `lost`, as the reopened log must hold them. */
function assertRecordsExcept(records: LogRecord[], to: number, lost: number[]): void {
  const want = Array.from({ length: to }, (_, i) => i).filter((i) => !lost.includes(i));
  assert.deepEqual(records.map((r) => r.offset), want);
  for (const r of records) assert.equal(r.payload.toString(), payloadFor(r.offset).toString());
}

test('torn tail: a few bytes cut off the last record', async (t) => {
  const dir = await tempDir(t);
  await prepare(dir);
  await asIfCrashedMidWrite(dir, 59);
  const seg = await lastSegment(dir);
  const size = (await stat(seg)).size;
  await truncate(seg, size - 3);
  await checkRecovered(dir, 59);
});

test('torn tail: only part of the last header is left', async (t) => {
  const dir = await tempDir(t);
  await prepare(dir);
  await asIfCrashedMidWrite(dir, 59);
  const seg = await lastSegment(dir);
  const size = (await stat(seg)).size;
  await truncate(seg, size - recordBytes(59) + 10);
  await checkRecovered(dir, 59);
});

test('a complete last record that fails its CRC is damage: lost, reported, its offset not reused', async (t) => {
  const dir = await tempDir(t);
  await prepare(dir);
  const seg = await lastSegment(dir);
  const size = (await stat(seg)).size;
  const fh = await open(seg, 'r+');
  await fh.write(Buffer.from('XX'), 0, 2, size - Math.floor(payloadFor(59).length / 2));
  await fh.close();
  const lines: string[] = [];
  const log = await SegmentLog.open(dir, { segmentBytes: 1024, report: (l) => lines.push(l) });
  assert.equal(log.endOffset(), 60, 'the damaged record keeps its offset');
  assertRecordsExcept(await readAll(log), 60, [59]);
  assert.equal((await log.append([payloadFor(60)])).firstOffset, 60);
  assert.equal(log.health().recordsLost, 1);
  assert.match(lines.join('\n'), /offsets 59\.\.59 \(1 records\) are lost/);
  await log.close();
  assert.ok((await readdir(dir)).some((n) => /\.log\.damaged-\d+$/.test(n)), 'damaged bytes kept aside');
});

test('damage inside the last segment costs only the damaged record', async (t) => {
  const dir = await tempDir(t);
  await prepare(dir);
  const seg = await lastSegment(dir);
  const base = Number(seg.slice(-24, -4));
  assert.ok(base > 0 && base < 57, 'fixture spans several segments');
  // One byte of the payload of record base + 1: its CRC fails, nothing can restore it.
  const at = SEGMENT_HEADER_BYTES + recordBytes(base) + HEADER_BYTES + 3;
  const before = await readFile(seg);
  const fh = await open(seg, 'r+');
  await fh.write(Buffer.from([before[at] ^ 0x42]), 0, 1, at);
  await fh.close();
  const lines: string[] = [];
  let log = await SegmentLog.open(dir, { segmentBytes: 1024, report: (l) => lines.push(l) });
  assert.equal(log.endOffset(), 60);
  assertRecordsExcept(await readAll(log), 60, [base + 1]);
  const h = log.health();
  assert.deepEqual([h.recordsLost, h.bytesLost, h.damagedRegions, h.damagedFiles], [1, recordBytes(base + 1), 1, 1]);
  const r = await log.append([payloadFor(60), payloadFor(61)]);
  assert.equal(r.firstOffset, 60);
  await log.close();
  const aside = (await readdir(dir)).filter((n) => n.includes('.damaged-'));
  assert.deepEqual(aside, [`${seg.slice(-24)}.damaged-${SEGMENT_HEADER_BYTES + recordBytes(base)}`]);
  const kept = await readFile(join(dir, aside[0]));
  assert.equal(kept.length, recordBytes(base + 1));
  assert.equal(kept[HEADER_BYTES + 3], before[at] ^ 0x42, 'the damaged bytes themselves were kept');
  log = await SegmentLog.open(dir, { segmentBytes: 1024 });
  assertRecordsExcept(await readAll(log), 62, [base + 1]);
  assert.equal(log.health().recordsLost, 0, 'repaired once: nothing new to report');
  assert.equal(log.health().damagedFiles, 1);
  await log.close();
});

for (const withIndex of [false, true]) {
  test(`a damaged closed segment ${withIndex ? 'with' : 'without'} its index opens and skips only the damaged record`, async (t) => {
    const dir = await tempDir(t);
    await prepare(dir);
    const first = join(dir, '00000000000000000000.log');
    if (!withIndex) await unlink(first.replace('.log', '.idx'));
    const data = await readFile(first);
    data[SEGMENT_HEADER_BYTES + HEADER_BYTES + 2] ^= 0xff; // payload of record 0
    await writeFile(first, data);
    const lines: string[] = [];
    const log = await SegmentLog.open(dir, { segmentBytes: 1024, report: (l) => lines.push(l) });
    // With an intact index the segment is not scanned at open: the read that reaches it repairs it.
    assertRecordsExcept(await readAll(log), 60, [0]);
    assert.equal(log.health().recordsLost, 1);
    assert.match(lines.join('\n'), /offsets 0\.\.0 \(1 records\) are lost/);
    assertRecordsExcept(await readAll(log), 60, [0]);
    assert.equal(log.health().recordsLost, 1, 'reported once');
    await log.close();
  });
}

test('a failed sync rejects the waiting appends; the next append writes again', async (t) => {
  const dir = await tempDir(t);
  let failSyncs = 0;
  const fs = faultyFs({ datasync: () => (failSyncs > 0 ? (failSyncs--, eio('injected sync failure')) : undefined) });
  const log = await SegmentLog.open(dir, { fs, report: () => {} });
  await log.append([payloadFor(0), payloadFor(1)]);
  failSyncs = 1;
  const failing = log.append([payloadFor(2)]);
  const queued = log.append([payloadFor(3)]);
  await assert.rejects(failing, /writing the log failed \(EIO\)/);
  await assert.rejects(queued, /writing the log failed \(EIO\)/);
  assert.equal(log.endOffset(), 2);
  assert.equal((await log.read(0)).records.length, 2);
  assert.equal(await log.waitFor(2, 20), false);
  assert.equal(log.health().failing?.code, 'EIO');
  // The failed round's offsets were never acknowledged: the next append takes them.
  assert.deepEqual((await log.append([payloadFor(2)])).firstOffset, 2);
  assert.equal(log.health().failing, undefined);
  assert.equal(log.health().writeFailures, 1);
  await log.close();

  const reopened = await SegmentLog.open(dir);
  assert.equal(reopened.endOffset(), 3);
  const all = await readAll(reopened);
  all.forEach((r, i) => assert.equal(r.payload.toString(), payloadFor(i).toString()));
  assert.equal(all.length, 3);
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
