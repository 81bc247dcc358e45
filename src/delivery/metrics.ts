// Prometheus text exposition of event-stream delivery: lag (records and milliseconds behind),
// delivered, retried and rejected counts, and when the last error happened, per app and
// destination. A stream whose worker runs on another node (cluster mode) is shown by its holder
// (pinstream_delivery_holder_info) and its records behind from the checkpoint shared in the Store
// (as last read, at most REMOTE_STATUS_REFRESH_MS old); its other families are the holder's to
// report. Served at GET /metrics to the bearer token PINSTREAM_METRICS_TOKEN (src/http/operator.ts):
// the labels name tenants' apps and destinations.

export interface StreamMetrics {
  appId: string;
  destinationArn: string;
  health?: {
    state: string;
    recordsBehind: number;
    millisBehind: number;
    delivered: number;
    retries: number;
    rejected: number;
    lastError?: { at: number };
  };
  /** The worker runs on another node: which one, and the lag from the shared checkpoint. */
  elsewhere?: { holder: string; recordsBehind?: number };
}

const FAMILIES: Array<[name: string, type: 'gauge' | 'counter', help: string, value: (h: NonNullable<StreamMetrics['health']>) => number | undefined]> = [
  ['pinstream_delivery_up', 'gauge', 'Whether the delivery worker runs (1) or not (0).', (h) => (h.state === 'stopped' ? 0 : 1)],
  ['pinstream_delivery_records_behind', 'gauge', 'Ingest-log records between the checkpoint and the log end (all apps).', (h) => h.recordsBehind],
  ['pinstream_delivery_millis_behind', 'gauge', 'Age of the oldest undelivered event of the app, in milliseconds (an upper bound while it is unread); 0 only when nothing is behind.', (h) => h.millisBehind],
  ['pinstream_delivery_delivered_total', 'counter', 'Events accepted by the destination since start.', (h) => h.delivered],
  ['pinstream_delivery_retries_total', 'counter', 'Send attempts retried after a failure since start.', (h) => h.retries],
  ['pinstream_delivery_rejected_total', 'counter', 'Events the destination can never take (error log) since start.', (h) => h.rejected],
  ['pinstream_delivery_last_error_timestamp_seconds', 'gauge', 'When the last delivery error happened.', (h) => (h.lastError ? h.lastError.at / 1000 : undefined)],
];

export function renderMetrics(streams: StreamMetrics[]): string {
  let out = '';
  for (const [name, type, help, value] of FAMILIES) {
    out += `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
    for (const s of streams) {
      const v = s.health
        ? value(s.health)
        : s.elsewhere
          ? name === 'pinstream_delivery_records_behind'
            ? s.elsewhere.recordsBehind
            : undefined
          : name === 'pinstream_delivery_up'
            ? 0
            : undefined;
      if (v === undefined) continue;
      out += `${name}{app_id="${label(s.appId)}",destination="${label(s.destinationArn)}"} ${v}\n`;
    }
  }
  const holders = streams.filter((s) => !s.health && s.elsewhere);
  if (holders.length > 0) {
    const name = 'pinstream_delivery_holder_info';
    out += `# HELP ${name} The node running the delivery worker, when it is not this one (1 per stream).\n# TYPE ${name} gauge\n`;
    for (const s of holders) out += `${name}{app_id="${label(s.appId)}",destination="${label(s.destinationArn)}",holder="${label(s.elsewhere!.holder)}"} 1\n`;
  }
  return out;
}

function label(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
