// The ingest-log entry: a one-line JSON header `["appId","endpointId","eventId"]` and a newline,
// then the event-stream record JSON. JSON escaping guarantees the first newline byte ends the
// header whatever the ids contain. Entries are built as one string, which the log encodes straight
// into its batch buffer; readers (delivery workers, the analytics loader, dedup rebuild) read the
// header without parsing the record, and the record bytes are exactly what is delivered.

const NEWLINE = 0x0a;

export interface IngestEntry {
  appId: string;
  endpointId: string;
  eventId: string;
  /** The Pinpoint event-stream record (reference/pinpoint.md §3), UTF-8 JSON. */
  record: Buffer;
  /**
   * Imported history appended for event streams only (src/history/): the import stored the event
   * in analytics itself, so the analytics loader passes it by. Marked by a fourth header element.
   */
  history?: boolean;
}

export function encodeIngestEntry(appId: string, endpointId: string, eventId: string, recordJson: string, history = false): string {
  return JSON.stringify(history ? [appId, endpointId, eventId, 1] : [appId, endpointId, eventId]) + '\n' + recordJson;
}

export function decodeIngestEntry(buf: Buffer): IngestEntry {
  const nl = buf.indexOf(NEWLINE);
  if (buf[0] !== 0x5b || nl < 0) throw new Error('not an ingest entry: missing header line');
  const [appId, endpointId, eventId, history] = JSON.parse(buf.toString('utf8', 0, nl)) as [string, string, string, number?];
  return { appId, endpointId, eventId, record: buf.subarray(nl + 1), ...(history === 1 ? { history: true } : {}) };
}

/**
 * An entry already decoded to text (the analytics loader: one UTF-8 decode per entry instead of
 * one for the header and one for the record); `record` is the record's JSON text. Same checks
 * as decodeIngestEntry (the newline byte is the same character in the text).
 */
export function decodeIngestText(text: string): Omit<IngestEntry, 'record'> & { record: string } {
  const nl = text.indexOf('\n');
  if (text.charCodeAt(0) !== 0x5b || nl < 0) throw new Error('not an ingest entry: missing header line');
  const [appId, endpointId, eventId, history] = JSON.parse(text.slice(0, nl)) as [string, string, string, number?];
  return { appId, endpointId, eventId, record: text.slice(nl + 1), ...(history === 1 ? { history: true } : {}) };
}
