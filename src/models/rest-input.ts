// restJson1 input assembly (Pinpoint): an operation's input structure from where its members
// travel — URI labels, query string, headers, and the JSON body (the payload member, or the
// body's own members when the operation binds none) — then validated by the ModelValidator with
// REST member paths. It owns only that gathering step; HTTP routing and the error answer stay in
// the REST layer.

import type { ModelValidator, ValidationResult } from './validate.js';
import { MalformedValue, scalar } from './query-input.js';

export interface RestRequestParts {
  /** URI labels by name (`application-id`), as the router decoded them. */
  labels: Readonly<Record<string, string>>;
  query: { get(name: string): string | null | undefined };
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The parsed JSON body ({} when empty). */
  body: unknown;
}

export class RestDecoder {
  constructor(private readonly validator: ModelValidator) {}

  decode<T = Record<string, unknown>>(operation: string, parts: RestRequestParts): ValidationResult<T> {
    const shapeName = this.validator.inputShape(operation);
    if (shapeName === undefined) return { ok: true, value: {} as T };
    const s = this.validator.shape(shapeName);
    const input: Record<string, unknown> = {};
    try {
      for (const [name, ref] of Object.entries(s.members ?? {})) {
        const wire = ref.locationName ?? name;
        let text: string | undefined;
        if (ref.location === 'uri') text = Object.hasOwn(parts.labels, wire) ? parts.labels[wire] : undefined;
        else if (ref.location === 'querystring') text = parts.query.get(wire) ?? undefined;
        else if (ref.location === 'header') {
          const h = parts.headers[wire.toLowerCase()];
          text = Array.isArray(h) ? h.join(',') : h;
        } else if (ref.location === undefined) {
          if (s.payload === name) input[name] = parts.body;
          else if (typeof parts.body === 'object' && parts.body !== null && Object.hasOwn(parts.body, wire)) input[name] = (parts.body as Record<string, unknown>)[wire];
          continue;
        } else continue;
        if (text !== undefined) input[name] = scalar(this.validator.shape(ref.shape).type, text, wire);
      }
    } catch (e) {
      if (e instanceof MalformedValue) return { ok: false, error: { code: 'SerializationException', message: e.message } };
      throw e;
    }
    return this.validator.validateShape<T>(shapeName, input);
  }
}
