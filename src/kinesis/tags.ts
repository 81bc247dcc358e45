// Tags of the embedded Kinesis (streams and consumers), as AWS checks them beyond the model's
// lengths (which the model-driven validation has checked): the allowed characters and the
// 50-tags-per-resource limit, for TagResource/UntagResource, AddTagsToStream,
// RemoveTagsFromStream and CreateStream's Tags alike.

import { invalidArgument } from './errors.js';
import { MAX_TAGS_PER_STREAM } from './limits.js';

/**
 * AWS's tag alphabet: Unicode letters, digits and spaces, and `_ . / = + - @ :` (`%` passes this
 * check and fails the next). Tab, newline, `,` and `;` are refused, as AWS refuses them (the
 * answers recorded in kinesalite's AddTagsToStream tests).
 */
const TAG_CHARACTERS = /^[\p{L}\p{N}\p{Zs}_./=+\-@:%]*$/u;

/**
 * Checks keys and values for AWS's characters. `failedTo` completes AWS's sentence for `%`:
 * "Failed to add tags to stream S under account A".
 */
export function checkTagCharacters(strings: Iterable<string>, failedTo: string): void {
  const all = [...strings];
  if (all.some((x) => !TAG_CHARACTERS.test(x))) {
    throw invalidArgument('Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @ :.');
  }
  if (all.some((x) => x.includes('%'))) {
    throw invalidArgument(
      `${failedTo} because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@',':'.`,
    );
  }
}

/**
 * The tags after adding `add` to `current` (own keys only: a key `__proto__` stays a key), or
 * InvalidArgumentException when the resource would hold more than 50 — AWS's type and sentence
 * (recorded when the limit was 10; the number is today's).
 */
export function mergeTags(current: Record<string, string> | undefined, add: Record<string, string>, kind: 'stream' | 'consumer', failedTo: string): Record<string, string> {
  checkTagCharacters([...Object.keys(add), ...Object.values(add)], failedTo);
  const merged: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(current ?? {})) merged[k] = v;
  for (const [k, v] of Object.entries(add)) merged[k] = v;
  if (Object.keys(merged).length > MAX_TAGS_PER_STREAM) {
    throw invalidArgument(`${failedTo} because a given ${kind} cannot have more than ${MAX_TAGS_PER_STREAM} tags associated with it.`);
  }
  // Stored as a plain object again: the stream document is JSON.
  return Object.fromEntries(Object.entries(merged));
}

/** Tags as the List* operations answer them: sorted by key. */
export function tagList(tags: Record<string, string> | undefined): Array<{ Key: string; Value: string }> {
  return Object.keys(tags ?? {})
    .sort()
    .map((k) => ({ Key: k, Value: tags![k] }));
}
