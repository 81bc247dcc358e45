// The loader's parse thread (src/analytics/parse-thread.ts) and the packed rows it answers with
// (row-pack.ts): rows cross exactly as parsed (NULLs, times, strings with the separator characters
// in them travel on the side), a packed read parsed there equals parseRecords here (skips, history
// entries, undecodable records), and a parse thread that dies fails its call and is not used again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRecords } from '../src/analytics/loader.js';
import { ParseThread, unpackRead } from '../src/analytics/parse-thread.js';
import { packRows, unpackRows } from '../src/analytics/row-pack.js';
import type { EventRow } from '../src/analytics/store.js';
import type { PackedRead } from '../src/analytics/thread.js';
import { encodeIngestEntry } from '../src/pinpoint/ingest-record.js';

function row(i: number, over: Partial<EventRow> = {}): EventRow {
  return {
    appId: 'app', eventKey: `ep/ev${i}`, eventType: 'level', eventTime: 1_700_000_000_123 + i, arrivalTime: 1_700_000_000_500 + i, endpointId: 'ep', userId: i % 2 ? null : `u${i}`,
    endpointCreated: i % 3 ? null : 1_600_000_000_000, sessionId: null, sessionStart: i % 2 ? 1_700_000_000_000 : null, channel: 'GCM', platform: null, platformVersion: '14',
    appVersion: null, make: 'Make', model: '', country: 'DE', attributes: '{"a":"x\\u0000y"}', metrics: '{}', endpointAttributes: '{}', campaignId: null, campaignActivityId: null,
    treatmentId: null, journeyId: null, journeyActivityId: null, campaignSendStatus: '', journeySendStatus: null, deliveryType: null, journeyActivityType: null, ...over,
  };
}

test('packed rows unpack to the same rows: NULLs, empty strings, times; rows with U+0000 or an exact U+0001 go on the side', () => {
  const rows = [row(0), row(1), row(2, { eventType: 'bad\u0000type' }), row(3, { userId: '\u0001' }), row(4, { make: 'ü\u0001x' }), row(5)];
  const packed = packRows(rows);
  assert.deepEqual(packed.odd.map(([i]) => i), [2, 3]);
  assert.deepEqual(unpackRows(structuredClone(packed)), rows);
  assert.deepEqual(unpackRows(packRows([])), []);
  const odd = packRows([row(0, { appId: '\u0000' })]);
  assert.equal(odd.text, '');
  assert.deepEqual(unpackRows(odd), [row(0, { appId: '\u0000' })]);
});

/** The ingest entries as the main thread packs a read of them (remote.ts logRead). */
function packedRead(payloads: string[], first: number): PackedRead {
  const bufs = payloads.map((p) => Buffer.from(p));
  const data = new Uint8Array(bufs.reduce((n, b) => n + b.length, 0));
  const meta = new Float64Array(bufs.length * 3);
  let pos = 0;
  bufs.forEach((b, i) => {
    data.set(b, pos);
    pos += b.length;
    meta.set([first + i, 1000 + i, b.length], i * 3);
  });
  return { data: data.buffer, meta: meta.buffer, nextOffset: first + bufs.length, end: first + bufs.length, now: 0 };
}

test('a read parsed on the parse thread equals parseRecords on this thread; a dead parse thread fails its call and stays unused', async () => {
  const record = (i: number) => JSON.stringify({ event_type: i % 5 ? 'level' : '_session.start', event_timestamp: 1_700_000_000_000 + i, arrival_timestamp: 1_700_000_000_001 + i, attributes: { n: String(i) }, metrics: { v: i }, client: { client_id: `c${i % 7}` }, endpoint: { Demographic: { Platform: 'ios' }, Attributes: { plan: ['pro'] } } });
  const payloads = Array.from({ length: 3000 }, (_, i) => encodeIngestEntry('app', `ep${i % 7}`, `ev${i}`, record(i), i % 500 === 7));
  payloads[11] = 'not an entry';
  payloads[12] = encodeIngestEntry('app', 'ep', 'broken', '{"event_type":');
  const here = parseRecords(unpackRead(packedRead(payloads, 100)), 100, 3100, 150);
  const parser = new ParseThread();
  try {
    const there = await parser.parse(packedRead(payloads, 100), 100, 150);
    assert.deepEqual(there, here);
    assert.equal(there.replayed, 50 + 5); // below loadedTo, and the history entries from 507 on (i % 500 === 7)
    assert.equal(there.skipped, 0); // 11 and 12 are below loadedTo
    const all = await parser.parse(packedRead(payloads, 0), 0, 0);
    assert.equal(all.skipped, 2);
    assert.match(all.lastError ?? '', /^offset 12: /);
    assert.equal(all.rows.length, 3000 - 2 - 6);
  } finally {
    await parser.close();
  }
  assert.equal(parser.usable, false);
  await assert.rejects(parser.parse(packedRead(payloads, 0), 0, 0), /closed/);
});
