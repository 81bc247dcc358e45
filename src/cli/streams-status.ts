// `pinstream streams status`: the delivery health of every event stream the caller may read
// (state, delivered, lag in records and milliseconds, retries, rejected events, last error), from
// the server's GET /v1/eventstreams/status, signed with SigV4 like any Pinpoint call.

import { defaultEndpoint, resolveCredentials, signedCall } from './signed.js';

export const STATUS_USAGE = `usage: pinstream streams status [--endpoint URL] [--json]

Shows each event stream's delivery: state, events delivered, how far behind (ingest-log records,
and the age of the oldest undelivered event in milliseconds; "≤" when it is a bound because that
event has not been read yet), retries, events rejected to the error log, and the last error.
credentials: PINSTREAM_ADMIN_ACCESS_KEY_ID/SECRET when both are set, else the AWS SDK's chain.`;

interface Item {
  ApplicationId: string;
  DestinationStreamArn: string;
  Health: { state: string; holder?: string; delivered?: number; recordsBehind?: number; millisBehind?: number; millisBehindExact?: boolean; retries?: number; rejected?: number; lastError?: { message: string; at: number } };
}

export async function streamsStatus(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let endpoint = defaultEndpoint(env);
  let asJson = false;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--endpoint' || argv[i] === '--endpoint-url') endpoint = (argv[++i] ?? '').replace(/\/+$/, '');
    else if (argv[i] === '--json') asJson = true;
    else {
      console.error(`pinstream streams status: unknown option ${argv[i]}\n\n${STATUS_USAGE}`);
      return 2;
    }
  }
  let credentials;
  try {
    credentials = await resolveCredentials(env);
  } catch (e) {
    console.error(`pinstream streams status: no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (${(e as Error).message})`);
    return 1;
  }
  let res: Response;
  try {
    res = await signedCall(endpoint, credentials, env, { method: 'GET', path: '/v1/eventstreams/status' });
  } catch (e) {
    console.error(`pinstream streams status: cannot reach ${endpoint} (${(e as Error).message}); is the server running there?`);
    return 1;
  }
  const body = (await res.json()) as { Item?: Item[]; Message?: string };
  if (!res.ok) {
    console.error(`pinstream streams status: ${res.status} ${res.headers.get('x-amzn-errortype') ?? ''}: ${body.Message ?? ''}`);
    return 1;
  }
  if (asJson) {
    console.log(JSON.stringify(body.Item, null, 2));
    return 0;
  }
  const rows = (body.Item ?? []).map((i) => [
    i.ApplicationId,
    i.DestinationStreamArn,
    // 'elsewhere': another node runs the worker (cluster mode); its lag is from the shared checkpoint.
    i.Health.state === 'elsewhere' && i.Health.holder ? `elsewhere (${i.Health.holder})` : i.Health.state,
    String(i.Health.delivered ?? 0),
    // A bound (nothing of the app read yet) is shown as one: "at most".
    `${i.Health.recordsBehind ?? 0} rec / ${i.Health.millisBehindExact === false ? '≤ ' : ''}${i.Health.millisBehind ?? 0} ms`,
    String(i.Health.retries ?? 0),
    String(i.Health.rejected ?? 0),
    i.Health.lastError ? `${new Date(i.Health.lastError.at).toISOString()} ${i.Health.lastError.message}` : '-',
  ]);
  if (rows.length === 0) {
    console.log('no event streams');
    return 0;
  }
  const head = ['application', 'destination', 'state', 'delivered', 'behind', 'retries', 'rejected', 'last error'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  for (const r of [head, ...rows]) console.log(r.map((v, c) => v.padEnd(widths[c])).join('  ').trimEnd());
  return 0;
}
