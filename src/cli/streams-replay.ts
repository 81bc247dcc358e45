// `pinstream streams replay APP_ID --from ISO`: delivers an app's events again, from those that
// arrived at that time on, through the server's POST /v1/apps/{id}/eventstream/replay (a Pinstream
// extension), signed with SigV4 like any Pinpoint call.

import { defaultEndpoint, resolveCredentials, signedCall } from './signed.js';

export const REPLAY_USAGE = `usage: pinstream streams replay APP_ID --from ISO-8601 [--endpoint URL] [--json]

Moves the app's event-stream checkpoint back to the first event that arrived at or after --from
(within the ingest log's retention window) and restarts delivery from there.
credentials: PINSTREAM_ADMIN_ACCESS_KEY_ID/SECRET when both are set, else the AWS SDK's chain.`;

export async function streamsReplay(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let endpoint = defaultEndpoint(env);
  let from: string | undefined;
  let appId: string | undefined;
  let asJson = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--endpoint' || a === '--endpoint-url') endpoint = (argv[++i] ?? '').replace(/\/+$/, '');
    else if (a === '--from') from = argv[++i];
    else if (a.startsWith('--from=')) from = a.slice('--from='.length);
    else if (a === '--json') asJson = true;
    else if (!a.startsWith('-') && appId === undefined) appId = a;
    else {
      console.error(`pinstream streams replay: unexpected argument ${a}\n\n${REPLAY_USAGE}`);
      return 2;
    }
  }
  if (!appId || !from) {
    console.error(`pinstream streams replay: ${!appId ? 'APP_ID' : '--from'} is required\n\n${REPLAY_USAGE}`);
    return 2;
  }
  let credentials;
  try {
    credentials = await resolveCredentials(env);
  } catch (e) {
    console.error(`pinstream streams replay: no credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (${(e as Error).message})`);
    return 1;
  }
  let res: Response;
  try {
    res = await signedCall(endpoint, credentials, env, {
      method: 'POST',
      path: `/v1/apps/${encodeURIComponent(appId)}/eventstream/replay`,
      body: { StartTime: from },
    });
  } catch (e) {
    console.error(`pinstream streams replay: cannot reach ${endpoint} (${(e as Error).message}); is the server running there?`);
    return 1;
  }
  const text = await res.text();
  let body: { Message?: string; message?: string; Checkpoint?: number; StartTime?: string; DestinationStreamArn?: string } = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    // not JSON: reported below as it is
  }
  if (!res.ok) {
    console.error(`pinstream streams replay: ${res.status} ${res.headers.get('x-amzn-errortype') ?? ''}: ${body.Message ?? body.message ?? text}`);
    return 1;
  }
  if (asJson) {
    console.log(JSON.stringify(body, null, 2));
    return 0;
  }
  console.log(`replaying app ${appId} to ${body.DestinationStreamArn} from ${body.StartTime}: checkpoint ${body.Checkpoint}`);
  return 0;
}
