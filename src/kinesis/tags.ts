// Tags of the embedded Kinesis (streams and consumers), as AWS checks them beyond the model's
// lengths: the allowed characters, the 50-tags-per-resource limit, and the wire shapes of tag
// maps and key lists for the ARN-based operations (TagResource, UntagResource). AddTagsToStream,
// RemoveTagsFromStream and CreateStream's Tags go through the same checks.

import { isObject } from '../http/shape.js';
import { model } from '../models/generated/kinesis.js';
import { invalidArgument, validation } from './errors.js';
import { MAX_TAGS_PER_STREAM } from './limits.js';

/**
 * AWS's tag alphabet: Unicode letters, digits and spaces, and `_ . / = + - @ :` (`%` passes this
 * check and fails the next). Tab, newline, `,` and `;` are refused, as AWS refuses them (the
 * answers recorded in kinesalite's AddTagsToStream tests).
 */
const TAG_CHARACTERS = /^[\p{L}\p{N}\p{Zs}_./=+\-@:%]*$/u;

const tagMapShape = model.shapes.TagMap;
const tagKeyShape = model.shapes.TagKey;
const tagValueShape = model.shapes.TagValue;
const tagKeyListShape = model.shapes.TagKeyList;

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

/** A required TagMap member within the model's limits (entries, key and value lengths). */
export function tagMapInput(v: unknown): Record<string, string> {
  if (v === undefined || v === null) throw validation(null, 'tags', 'Member must not be null');
  if (!isObject(v)) throw validation(v, 'tags', 'Member must be a map');
  const entries = Object.entries(v);
  if (entries.length < tagMapShape.min! || entries.length > tagMapShape.max!) {
    throw validation(`${entries.length} tags`, 'tags', `Member must have length less than or equal to ${tagMapShape.max} and greater than or equal to ${tagMapShape.min}`);
  }
  for (const [k, val] of entries) {
    if (k.length < tagKeyShape.min! || k.length > tagKeyShape.max!) {
      throw validation(k, 'tags', `Map keys must satisfy constraint: [Member must have length less than or equal to ${tagKeyShape.max}, Member must have length greater than or equal to ${tagKeyShape.min}]`);
    }
    if (typeof val !== 'string' || val.length > tagValueShape.max!) {
      throw validation(val, 'tags', `Map value must satisfy constraint: [Member must have length less than or equal to ${tagValueShape.max}, Member must have length greater than or equal to ${tagValueShape.min}]`);
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/** A required TagKeyList member within the model's limits. */
export function tagKeysInput(v: unknown): string[] {
  if (v === undefined || v === null) throw validation(null, 'tagKeys', 'Member must not be null');
  if (!Array.isArray(v) || v.length < tagKeyListShape.min! || v.length > tagKeyListShape.max!) {
    throw validation(Array.isArray(v) ? `${v.length} keys` : v, 'tagKeys', `Member must have length less than or equal to ${tagKeyListShape.max} and greater than or equal to ${tagKeyListShape.min}`);
  }
  for (const k of v) {
    if (typeof k !== 'string' || k.length < tagKeyShape.min! || k.length > tagKeyShape.max!) {
      throw validation(k, 'tagKeys', `Member must satisfy constraint: [Member must have length less than or equal to ${tagKeyShape.max}, Member must have length greater than or equal to ${tagKeyShape.min}]`);
    }
  }
  return v as string[];
}

/** Tags as the List* operations answer them: sorted by key. */
export function tagList(tags: Record<string, string> | undefined): Array<{ Key: string; Value: string }> {
  return Object.keys(tags ?? {})
    .sort()
    .map((k) => ({ Key: k, Value: tags![k] }));
}
