// Fault injection, systematically: seeded random faults against every kind of log, at the unit
// level here (the segment log itself) and through the real server in fault-injection-server.test.ts.
//   1. Damage at rest: byte flips and truncations at random positions of active and closed
//      segments and of index files, over several reopen cycles (damage on top of repaired damage).
//   2. Write faults through the file seam: ENOSPC after a partial write, failing fdatasync, failing
//      truncate, failing segment creation, while concurrent appends run.
// Invariants: every acknowledged record outside the damaged bytes is read back intact; no record
// is returned that was not acknowledged or that differs from what was written; every loss is
// reported (health); offsets are never handed out twice; the log opens and keeps accepting.
// Seeds are printed; FAULT_SEED=<seed> reproduces a run, PINSTREAM_FAULTS_LONG=1 runs many more
// rounds. Each test prints the faults injected, records acknowledged and lost, and its time.

import { test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogWriteError } from '../src/log/errors.js';
import { SegmentLog } from '../src/log/segment-log.js';
import { eio, enospc, faultyFs, flipByte, seeded, suiteSeed } from './helpers/faults.js';
import { framesOf, logFiles, type Frame } from './helpers/segments.js';

const LONG = process.env.PINSTREAM_FAULTS_LONG === '1';
const AT_REST_ROUNDS = LONG ? 400 : 40;
const WRITE_ROUNDS = LONG ? 200 : 20;
const CYCLES = 3;

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pinstream-faults-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A payload that names its record and has a random length and random bytes. */
function payload(rng: ReturnType<typeof seeded>, id: number): Buffer {
  const body = Buffer.alloc(rng.int(300));
  for (let i = 0; i < body.length; i++) body[i] = rng.int(256);
  return Buffer.concat([Buffer.from(`#${id}#`), body]);
}

async function readAll(log: SegmentLog): Promise<Map<number, Buffer>> {
  const out = new Map<number, Buffer>();
  for (let next = log.startOffset(); next < log.endOffset(); ) {
    const r = await log.read(next, { maxRecords: 1 + (next % 37) });
    for (const rec of r.records) {
      assert.ok(!out.has(rec.offset), `offset ${rec.offset} returned twice`);
      out.set(rec.offset, rec.payload);
    }
    assert.ok(r.nextOffset > next, 'a read always moves on');
    next = r.nextOffset;
  }
  return out;
}

test('damage at rest: random byte flips and truncations of active and closed segments and index files', async (t) => {
  const seed = suiteSeed();
  t.diagnostic(`seed ${seed} (FAULT_SEED=${seed} reproduces this run)`);
  const started = performance.now();
  const totals = { rounds: 0, faults: 0, flips: 0, truncations: 0, indexFaults: 0, acknowledged: 0, damaged: 0, lost: 0, lostOutsideDamage: 0 };
  for (let round = 0; round < AT_REST_ROUNDS; round++) {
    const rng = seeded(seed + round);
    const where = `seed ${seed} round ${round}`;
    const dir = await tempDir(t);
    const segmentBytes = rng.pick([512, 2048, 8192]);
    const acked = new Map<number, Buffer>();
    let nextId = 0;
    let maxAcked = -1;
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      // Without fdatasync: it plays no part in damage at rest, and keeps the rounds quick.
      const log = await SegmentLog.open(dir, { segmentBytes, fsync: false, report: () => {} });
      // Reopened after damage: offsets go on above every offset ever acknowledged.
      const batches = 3 + rng.int(12);
      for (let b = 0; b < batches; b++) {
        const batch = Array.from({ length: 1 + rng.int(8) }, () => payload(rng, nextId++));
        const { firstOffset } = await log.append(batch);
        assert.ok(firstOffset > maxAcked, `${where}: offset ${firstOffset} handed out again (acknowledged up to ${maxAcked})`);
        batch.forEach((p, i) => acked.set(firstOffset + i, p));
        maxAcked = firstOffset + batch.length - 1;
        totals.acknowledged += batch.length;
      }
      await log.close();

      // Faults, with the log closed, as a disk or an operator would leave them.
      const files = await logFiles(dir);
      // Where each record's bytes are, before any fault: a fault damages the records it touches.
      const frames = new Map<string, Frame[]>();
      for (const f of files.segments) frames.set(f, framesOf(await readFile(f)));
      const touched = (file: string, hit: (fr: Frame) => boolean) => {
        for (const fr of frames.get(file) ?? []) if (fr.offset !== undefined && hit(fr)) damaged.add(fr.offset);
      };
      const damaged = new Set<number>();
      const faults = 1 + rng.int(3);
      let indexDamaged = false;
      for (let f = 0; f < faults; f++) {
        const onIndex = files.indexes.length > 0 && rng.next() < 0.25;
        const pool = onIndex ? files.indexes : rng.next() < 0.5 ? files.segments.slice(-1) : files.segments;
        const file = rng.pick(pool);
        const size = (await stat(file)).size;
        if (size === 0) continue;
        totals.faults++;
        if (rng.next() < 0.75) {
          const at = rng.int(size);
          touched(file, (fr) => at >= fr.start && at < fr.end);
          await flipByte(file, at, 1 << rng.int(8));
          totals.flips++;
        } else {
          const at = rng.int(size);
          touched(file, (fr) => fr.end > at);
          await truncate(file, at);
          totals.truncations++;
        }
        if (onIndex) {
          indexDamaged = true;
          totals.indexFaults++;
        }
      }

      const reopened = await SegmentLog.open(dir, { segmentBytes, fsync: false, report: () => {} });
      const got = await readAll(reopened);
      for (const [offset, p] of got) {
        const want = acked.get(offset);
        assert.ok(want, `${where}: offset ${offset} was never acknowledged`);
        assert.ok(p.equals(want), `${where}: offset ${offset} reads back different bytes`);
      }
      const lost = [...acked.keys()].filter((o) => !got.has(o));
      const outside = lost.filter((o) => !damaged.has(o));
      assert.deepEqual(outside, [], `${where}: acknowledged records lost outside the damaged bytes`);
      const h = reopened.health();
      if (lost.length > 0) assert.ok(h.recordsLost >= lost.length, `${where}: ${lost.length} lost, ${h.recordsLost} reported`);
      if (indexDamaged) assert.ok(h.indexRebuilds >= 1, `${where}: a damaged index went unnoticed`);
      const after = payload(rng, nextId++);
      const { firstOffset } = await reopened.append([after]);
      assert.ok(firstOffset > maxAcked, `${where}: offset ${firstOffset} reused after damage (acknowledged up to ${maxAcked})`);
      acked.set(firstOffset, after);
      maxAcked = firstOffset;
      totals.acknowledged++;
      await reopened.close();
      for (const o of lost) acked.delete(o);
      totals.damaged += damaged.size;
      totals.lost += lost.length;
      totals.lostOutsideDamage += outside.length;
    }
    totals.rounds++;
  }
  const ms = Math.round(performance.now() - started);
  t.diagnostic(`damage at rest: ${JSON.stringify(totals)} in ${ms} ms`);
  console.log(`fault injection (log, at rest): seed ${seed}, ${totals.faults} faults injected, ${totals.acknowledged} records acknowledged, ${totals.lost} lost (all in damaged bytes), ${totals.lostOutsideDamage} lost outside damaged bytes, ${ms} ms`);
  assert.equal(totals.lostOutsideDamage, 0);
});

test('write faults: ENOSPC after partial writes, failing fdatasync, truncate and segment creation, under concurrent appends', async (t) => {
  const seed = suiteSeed();
  t.diagnostic(`seed ${seed} (FAULT_SEED=${seed} reproduces this run)`);
  const started = performance.now();
  const totals = { rounds: 0, faults: 0, acknowledged: 0, refused: 0, lost: 0 };
  for (let round = 0; round < WRITE_ROUNDS; round++) {
    const rng = seeded(seed ^ (0x5f3759df + round));
    const where = `seed ${seed} round ${round}`;
    const dir = await tempDir(t);
    const faultRate = 0.1 + rng.next() * 0.3;
    let rate = 0;
    const count = () => (totals.faults++, true);
    const fs = faultyFs({
      write: (path, bytes) =>
        path.endsWith('.log') && rng.next() < rate && count() ? { prefix: rng.int(bytes + 1), error: rng.next() < 0.7 ? enospc() : eio('write') } : undefined,
      datasync: () => (rng.next() < rate / 2 && count() ? eio('fdatasync') : undefined),
      truncate: () => (rng.next() < rate / 3 && count() ? eio('truncate') : undefined),
      open: (path, flags) => (flags === 'w+' && path.endsWith('.log') && rng.next() < rate && count() ? enospc() : undefined),
    });
    const log = await SegmentLog.open(dir, { fs, segmentBytes: rng.pick([1024, 4096]), report: () => {} });
    rate = faultRate;
    const acked = new Map<number, Buffer>();
    let id = 0;
    const writer = async () => {
      for (let i = 0; i < 25; i++) {
        const batch = Array.from({ length: 1 + rng.int(5) }, () => payload(rng, id++));
        try {
          const { firstOffset } = await log.append(batch);
          batch.forEach((p, k) => {
            assert.ok(!acked.has(firstOffset + k), `${where}: offset ${firstOffset + k} acknowledged twice`);
            acked.set(firstOffset + k, p);
          });
        } catch (e) {
          assert.ok(e instanceof LogWriteError, `${where}: ${String(e)}`);
          totals.refused += batch.length;
        }
      }
    };
    await Promise.all([writer(), writer(), writer()]);
    // The disk has room again: the very next append succeeds, without reopening.
    rate = 0;
    const { firstOffset } = await log.append([Buffer.from('after')]);
    acked.set(firstOffset, Buffer.from('after'));
    assert.equal(log.health().failing, undefined, `${where}: still failing after a successful write`);
    await log.close();
    const reopened = await SegmentLog.open(dir, { report: () => {} });
    const got = await readAll(reopened);
    // Exactly what was acknowledged: nothing lost, nothing refused came back, no torn garbage.
    assert.deepEqual([...got.keys()].sort((a, b) => a - b), [...acked.keys()].sort((a, b) => a - b), `${where}: records after reopen`);
    for (const [o, p] of got) assert.ok(p.equals(acked.get(o)!), `${where}: offset ${o} differs`);
    assert.equal(reopened.health().recordsLost, 0, `${where}: no loss to report`);
    await reopened.close();
    totals.acknowledged += acked.size;
    totals.rounds++;
  }
  const ms = Math.round(performance.now() - started);
  t.diagnostic(`write faults: ${JSON.stringify(totals)} in ${ms} ms`);
  console.log(`fault injection (log, writes): seed ${seed}, ${totals.faults} faults injected, ${totals.acknowledged} records acknowledged, ${totals.refused} refused, ${totals.lost} acknowledged lost, ${ms} ms`);
});
