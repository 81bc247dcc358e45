// The HTTP endpoint destination of the embedded Firehose: one POST per buffered batch in Firehose's
// HTTP endpoint delivery format (protocol 1.0), acknowledged only by a 200 whose JSON body echoes
// the request id. Failed batches go, once the deliverer's retry window is over, to the S3 backup
// under the `http-endpoint-failed` error output; with S3BackupMode AllData every batch is also
// written there as a normal object. Retrying belongs to the deliverer: `deliver` makes one attempt.

import { gzipSync } from 'node:zlib';
import type { Clock } from '../../clock.js';
import {
  DestinationConfigError,
  type BufferingHints,
  type DeliveryBatch,
  type DeliveryOutcome,
  type DestinationContext,
  type FirehoseDestination,
  type FirehoseRecord,
  type StreamInfo,
} from '../destination.js';
import { bufferingOf, DEFAULT_HTTP_RETRY_S, retryDurationMsOf } from '../limits.js';
import { S3Destination } from './s3.js';

/** Firehose gives the endpoint 3 minutes to answer one request. */
export const HTTP_ENDPOINT_TIMEOUT_MS = 3 * 60_000;
/** How much of an endpoint's answer goes into the error message (Firehose logs a truncated body). */
export const HTTP_ERROR_BODY_EXCERPT_CHARS = 512;
/** An answer larger than this is not an acknowledgement; reading stops there (bounded memory). */
export const HTTP_MAX_RESPONSE_BYTES = 1024 * 1024;
/** Error output type (the `!{firehose:error-output-type}` folder) of batches the endpoint never took. */
export const HTTP_ERROR_OUTPUT_TYPE = 'http-endpoint-failed';
export const HTTP_PROTOCOL_VERSION = '1.0';

/**
 * Error codes of failed attempts. DestinationException (a non-200 answer) is documented by AWS;
 * the other three names are ours, in the same style.
 */
export const HttpErrorCode = {
  destination: 'HttpEndpoint.DestinationException',
  invalidResponse: 'HttpEndpoint.InvalidResponseFromDestination',
  timeout: 'HttpEndpoint.RequestTimeout',
  connection: 'HttpEndpoint.ConnectionFailed',
} as const;

export interface HttpEndpointOptions {
  /** Per-request timeout; HTTP_ENDPOINT_TIMEOUT_MS unless a test needs a short one. */
  timeoutMs?: number;
}

interface HttpConfig {
  EndpointConfiguration?: { Url?: string; Name?: string; AccessKey?: string };
  BufferingHints?: { SizeInMBs?: number; IntervalInSeconds?: number };
  RequestConfiguration?: { ContentEncoding?: string; CommonAttributes?: { AttributeName: string; AttributeValue: string }[] };
  RetryOptions?: { DurationInSeconds?: number };
  S3BackupMode?: string;
  S3Configuration?: Record<string, unknown>;
}

export class HttpEndpointDestination implements FirehoseDestination {
  readonly kind = 'HttpEndpoint' as const;
  readonly buffering: BufferingHints;
  readonly retryDurationMs: number;
  private readonly url: URL;
  private readonly accessKey?: string;
  private readonly commonAttributes?: string;
  private readonly gzip: boolean;
  private readonly allData: boolean;
  private readonly backup: S3Destination;
  private readonly clock: Clock;
  private readonly timeoutMs: number;
  /** AllData: batches the endpoint acknowledged whose backup copy is still to be written, so a retry does not POST them again. */
  private readonly acknowledged = new Set<string>();

  constructor(config: Record<string, unknown>, stream: () => StreamInfo, ctx: DestinationContext, options: HttpEndpointOptions = {}) {
    const c = config as HttpConfig;
    const url = c.EndpointConfiguration?.Url;
    if (!url) throw new DestinationConfigError('EndpointConfiguration.Url is required');
    try {
      this.url = new URL(url);
    } catch {
      throw new DestinationConfigError(`EndpointConfiguration.Url is not a URL: ${url}`);
    }
    if (this.url.protocol !== 'https:' && this.url.protocol !== 'http:') {
      throw new DestinationConfigError(`EndpointConfiguration.Url must be http(s): ${url}`);
    }
    if (!c.S3Configuration) throw new DestinationConfigError('S3Configuration is required');
    this.buffering = bufferingOf(c.BufferingHints);
    this.retryDurationMs = retryDurationMsOf(c.RetryOptions, DEFAULT_HTTP_RETRY_S);
    this.accessKey = c.EndpointConfiguration?.AccessKey || undefined;
    const attrs = c.RequestConfiguration?.CommonAttributes ?? [];
    if (attrs.length > 0) {
      this.commonAttributes = JSON.stringify({ commonAttributes: Object.fromEntries(attrs.map((a) => [a.AttributeName, a.AttributeValue])) });
    }
    this.gzip = c.RequestConfiguration?.ContentEncoding === 'GZIP';
    this.allData = c.S3BackupMode === 'AllData';
    this.backup = new S3Destination(c.S3Configuration, stream, ctx);
    this.clock = ctx.clock;
    this.timeoutMs = options.timeoutMs ?? HTTP_ENDPOINT_TIMEOUT_MS;
  }

  async deliver(batch: DeliveryBatch): Promise<DeliveryOutcome> {
    if (!this.acknowledged.has(batch.id)) {
      const sent = await this.post(batch);
      if (!sent.ok) return sent;
      if (!this.allData) return sent;
      this.acknowledged.add(batch.id);
    }
    const written = await this.backup.writeObject(batch.records, batch.firstArrivalMs, batch.id);
    if (!written.ok) return { ok: false, error: `S3 backup (AllData) failed: ${written.error}` };
    this.acknowledged.delete(batch.id);
    return { ok: true };
  }

  async abandon(batch: DeliveryBatch, lastError: string): Promise<DeliveryOutcome> {
    this.acknowledged.delete(batch.id);
    const { code, message } = splitError(lastError);
    return this.backup.writeErrors(batch.records, HTTP_ERROR_OUTPUT_TYPE, code, message, batch.firstArrivalMs, batch.attempt);
  }

  async close(): Promise<void> {
    await this.backup.close();
  }

  /** One attempt: POST the batch and judge the answer. Never throws. */
  private async post(batch: DeliveryBatch): Promise<DeliveryOutcome> {
    const body = requestBody(batch.id, this.clock.now(), batch.records);
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'X-Amz-Firehose-Protocol-Version': HTTP_PROTOCOL_VERSION,
      'X-Amz-Firehose-Request-Id': batch.id,
      'X-Amz-Firehose-Source-Arn': batch.stream.arn,
    };
    if (this.accessKey !== undefined) headers['X-Amz-Firehose-Access-Key'] = this.accessKey;
    if (this.commonAttributes !== undefined) headers['X-Amz-Firehose-Common-Attributes'] = this.commonAttributes;
    let payload: Buffer = body;
    if (this.gzip) {
      payload = gzipSync(body);
      headers['Content-Encoding'] = 'gzip';
    }
    let status: number;
    let text: string;
    try {
      const res = await fetch(this.url, { method: 'POST', headers, body: payload as Uint8Array<ArrayBuffer>, signal: AbortSignal.timeout(this.timeoutMs) });
      status = res.status;
      const read = await readBounded(res, HTTP_MAX_RESPONSE_BYTES);
      if (read === undefined) return fail(HttpErrorCode.invalidResponse, `${status}: response larger than ${HTTP_MAX_RESPONSE_BYTES} bytes`);
      text = read;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      if (e.name === 'TimeoutError' || e.name === 'AbortError') {
        return fail(HttpErrorCode.timeout, `no response from ${this.url.origin} within ${this.timeoutMs} ms`);
      }
      const cause = e.cause?.code ?? e.cause?.message ?? e.message;
      return fail(HttpErrorCode.connection, `could not reach ${this.url.origin}: ${cause}`);
    }
    if (status !== 200) {
      return fail(HttpErrorCode.destination, `The following response was received from the endpoint destination. ${status}: ${excerpt(text)}`);
    }
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      return fail(HttpErrorCode.invalidResponse, `200 with a body that is not JSON: ${excerpt(text)}`);
    }
    // The echoed request id is the endpoint's acknowledgement of this very batch: a proxy or a
    // misrouted answer with another id has not taken our records, so it counts as a failure.
    const id = typeof answer === 'object' && answer !== null ? (answer as { requestId?: unknown }).requestId : undefined;
    if (id !== batch.id) {
      return fail(HttpErrorCode.invalidResponse, `200 whose requestId ${JSON.stringify(id ?? null)} is not ${batch.id}: ${excerpt(text)}`);
    }
    return { ok: true };
  }
}

/** The request body of protocol 1.0; exported for tests that check the wire shape. */
export function requestBody(requestId: string, timestamp: number, records: FirehoseRecord[]): Buffer {
  return Buffer.from(JSON.stringify({ requestId, timestamp, records: records.map((r) => ({ data: r.data.toString('base64') })) }));
}

function fail(code: string, message: string): DeliveryOutcome {
  return { ok: false, error: `${code}: ${message}` };
}

/** `Code: message` from our own outcome strings; other text keeps the generic destination code. */
function splitError(error: string): { code: string; message: string } {
  const m = /^(HttpEndpoint\.[A-Za-z]+): ([\s\S]*)$/.exec(error);
  return m ? { code: m[1], message: m[2] } : { code: HttpErrorCode.destination, message: error };
}

function excerpt(text: string): string {
  return text.length > HTTP_ERROR_BODY_EXCERPT_CHARS ? `${text.slice(0, HTTP_ERROR_BODY_EXCERPT_CHARS)}…` : text;
}

async function readBounded(res: Response, max: number): Promise<string | undefined> {
  if (!res.body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    // Leaving the loop early cancels the stream, so the rest of the answer is never buffered.
    if (size > max) return undefined;
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}
