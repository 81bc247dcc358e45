// Loaded into the server under test with `node --import` by `bench ingest` (never by Pinstream
// itself): once a second it prints one `pinstream-probe {json}` line with the main thread's memory
// (V8 heap, external, array buffers, RSS), its event-loop delay (max and p99 over the second: how
// long a ready callback waited behind a synchronous turn), its event-loop utilization (the share of
// that second the main thread was busy rather than waiting) and the GC pauses of that second. The
// benches read these lines to say where memory goes, what makes the tail latency (`bench ingest`)
// and how busy the thread answering requests is while Firehose delivers (`bench firehose`).

import { monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';

const PROBE_INTERVAL_MS = 1000;
const delay = monitorEventLoopDelay({ resolution: 5 });
delay.enable();
let gcCount = 0;
let gcMs = 0;
let gcMaxMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gcCount++;
    gcMs += e.duration;
    if (e.duration > gcMaxMs) gcMaxMs = e.duration;
  }
}).observe({ entryTypes: ['gc'] });

let elu = performance.eventLoopUtilization();

const timer = setInterval(() => {
  const m = process.memoryUsage();
  const second = performance.eventLoopUtilization(elu);
  elu = performance.eventLoopUtilization();
  const mb = (n: number) => Math.round((n / 1048576) * 10) / 10;
  const line = {
    t: Date.now(),
    rssMB: mb(m.rss),
    heapUsedMB: mb(m.heapUsed),
    heapTotalMB: mb(m.heapTotal),
    externalMB: mb(m.external),
    arrayBuffersMB: mb(m.arrayBuffers),
    loopMaxMs: Math.round(delay.max / 1e4) / 100,
    loopP99Ms: Math.round(delay.percentile(99) / 1e4) / 100,
    elu: Math.round(second.utilization * 1000) / 1000,
    gcCount,
    gcMs: Math.round(gcMs * 10) / 10,
    gcMaxMs: Math.round(gcMaxMs * 10) / 10,
  };
  delay.reset();
  gcCount = 0;
  gcMs = 0;
  gcMaxMs = 0;
  process.stdout.write(`pinstream-probe ${JSON.stringify(line)}\n`);
}, PROBE_INTERVAL_MS);
timer.unref();
