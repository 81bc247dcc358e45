// How the conformance suites expect a member's value in a Coral validation message, computed from
// the model independently of src/models/validate.ts: "Value 'x' at …", "Value null at …", or, for
// a shape the model marks sensitive (or a list, map or structure holding one), "Value at …" with
// no value at all, as AWS answers for passwords and tokens.

import { shownValue } from '../../src/models/shown.js';
import type { Shape } from '../../src/models/types.js';

/** Whether a shape's values stay out of messages (recursive shapes: a cycle counts as not). */
export function hiddenShape(shapes: ReadonlyMap<string, Shape>, name: string, seen = new Set<string>()): boolean {
  if (seen.has(name)) return false;
  seen.add(name);
  const s = shapes.get(name);
  if (!s) throw new Error(`no shape ${name}`);
  if (s.sensitive) return true;
  const refs = [s.member, s.key, s.value, ...Object.values(s.members ?? {})];
  return refs.some((r) => r !== undefined && hiddenShape(shapes, r.shape, seen));
}

/** "Value 'x' " / "Value null " / "Value " (hidden), as a message starts for a member of `shape`. */
export function valuePrefix(shapes: ReadonlyMap<string, Shape>, shape: string, value: unknown): string {
  if (hiddenShape(shapes, shape)) return 'Value ';
  return value === undefined || value === null ? 'Value null ' : `Value '${shownValue(value, 4096)}' `;
}
