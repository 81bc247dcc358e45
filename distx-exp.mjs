// temp experiment (not committed)
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
const D = '/work/main/dist';
const { SegmentLog } = await import(D + '/src/log/segment-log.js');
const { ManualClock } = await import(D + '/src/clock.js');
const { PinstreamAnalytics } = await import(D + '/src/analytics/index.js');
const { openDb } = await import(D + '/src/db/db.js').catch(async () => ({}));
const bench = await import(D + '/bench/analytics.js');
console.log(Object.keys(bench));
