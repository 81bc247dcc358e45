// The ingest-log entry: a small binary header (app id, endpoint id, event id) in front of the
// event-stream record JSON. Readers of the log (delivery workers, the analytics loader, dedup
// rebuild) filter and key on the header without parsing the JSON; the JSON is exactly what is
// delivered downstream.

const VERSION = 1;
const HEADER = 1 + 1 + 2 + 2;

export interface IngestEntry {
  appId: string;
  endpointId: string;
  eventId: string;
  /** The Pinpoint event-stream record (reference/pinpoint.md §3), UTF-8 JSON. */
  record: Buffer;
}

export function encodeIngestEntry(appId: string, endpointId: string, eventId: string, recordJson: string): Buffer {
  const a = Buffer.byteLength(appId);
  const p = Buffer.byteLength(endpointId);
  const e = Buffer.byteLength(eventId);
  const r = Buffer.byteLength(recordJson);
  if (a > 0xff || p > 0xffff || e > 0xffff) throw new RangeError('ingest entry id too long');
  const buf = Buffer.allocUnsafe(HEADER + a + p + e + r);
  buf[0] = VERSION;
  buf[1] = a;
  buf.writeUInt16BE(p, 2);
  buf.writeUInt16BE(e, 4);
  let o = HEADER;
  o += buf.write(appId, o, 'utf8');
  o += buf.write(endpointId, o, 'utf8');
  o += buf.write(eventId, o, 'utf8');
  buf.write(recordJson, o, 'utf8');
  return buf;
}

/** Header fields only: cheap, for filtering by app. */
export function peekIngestApp(buf: Buffer): string {
  return buf.toString('utf8', HEADER, HEADER + buf[1]);
}

export function decodeIngestEntry(buf: Buffer): IngestEntry {
  if (buf[0] !== VERSION) throw new Error(`unknown ingest entry version ${buf[0]}`);
  const a = buf[1];
  const p = buf.readUInt16BE(2);
  const e = buf.readUInt16BE(4);
  let o = HEADER;
  const appId = buf.toString('utf8', o, (o += a));
  const endpointId = buf.toString('utf8', o, (o += p));
  const eventId = buf.toString('utf8', o, (o += e));
  return { appId, endpointId, eventId, record: buf.subarray(o) };
}
