// Names of the JetStream streams behind Pinstream's logs. A log is named by a kind and a path of
// name parts (Kinesis and Firehose stream names: letters, digits, `_`, `.`, `-`), but NATS stream
// names may not contain `.` (and should stay short: each is a folder on every server), and subject
// tokens may not contain `.` either. Each part is therefore escaped into [A-Za-z0-9_] with `_` as
// the escape character, which keeps the mapping one-to-one: no two logs share a stream or subject.

import { createHash } from 'node:crypto';
import { checkLogName, type LogKind } from '../provider.js';

/** Longest stream name used as is; longer ones are replaced by a hash (each is a directory name on the servers). */
export const MAX_STREAM_NAME = 200;
/** What a prefix (one deployment's, or one test's) may be: it starts every stream name and subject. */
export const PREFIX_RE = /^[A-Za-z][A-Za-z0-9]{0,31}$/;

/**
 * One name part in [A-Za-z0-9_]: letters and digits stay, every other byte is `_` + two hex
 * digits. `_` is never followed by `_` in an escaped part, so `__` can separate parts.
 */
export function escapePart(part: string): string {
  let out = '';
  for (const ch of part) {
    if (/^[A-Za-z0-9]$/.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `_${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export interface StreamNames {
  /** The JetStream stream. */
  stream: string;
  /** The one subject the stream captures: `<prefix>.log.<kind>.<part>.<part>…`. */
  subject: string;
}

/** The stream and subject of the log (kind, ...path) under `prefix`. */
export function streamNames(prefix: string, kind: LogKind, path: readonly string[]): StreamNames {
  checkLogName(path);
  const parts = path.map(escapePart);
  const subject = `${subjectRoot(prefix, kind)}.${parts.join('.')}`;
  let stream = `${prefix}_${kind}__${parts.join('__')}`;
  // Hashed names start `<prefix>_<kind>_H`; direct ones `<prefix>_<kind>__`: the two never meet.
  if (stream.length > MAX_STREAM_NAME) stream = `${prefix}_${kind}_H${createHash('sha256').update(subject).digest('hex').slice(0, 48)}`;
  return { stream, subject };
}

/** The subjects of every log of `kind` under `prefix`. */
export function subjectRoot(prefix: string, kind: LogKind): string {
  return `${prefix}.log.${kind}`;
}

/** The subject filters matching a log or a group of logs named by a path prefix. */
export function groupFilters(prefix: string, kind: LogKind, path: readonly string[]): string[] {
  checkLogName(path);
  const base = `${subjectRoot(prefix, kind)}.${path.map(escapePart).join('.')}`;
  return [base, `${base}.>`];
}
