// CBOR bodies nested too deep are refused while decoding: cborg builds values recursively, so a
// deep enough CBOR body would overflow the stack inside the decoder itself, before any check on
// the decoded value could run. The limit is the one every client document has (src/nesting.ts).

import { Tokenizer, Type, type Token } from 'cborg';
import { MAX_NESTING_DEPTH, nestingMessage } from '../nesting.js';

/**
 * A cborg tokenizer that stops decoding once arrays, maps and tags nest deeper than
 * MAX_NESTING_DEPTH. It tracks how many items each open container still expects.
 */
export class DepthLimitedTokenizer extends Tokenizer {
  /** Items still expected by each open array, map (two per entry) or tag; Infinity when indefinite. */
  private readonly open: number[] = [];

  constructor(data: Uint8Array) {
    // cborg's own decode defaults (a tokenizer given to decode() does not get them): 64-bit
    // integers become BigInts, indefinite lengths and undefined are read.
    super(data, { strict: false, allowIndefinite: true, allowUndefined: true, allowBigInt: true });
  }

  override next(): Token {
    const token = super.next();
    const open = this.open;
    if (Type.equals(token.type, Type.break)) {
      // Ends the innermost indefinite-length container (cborg rejects a break anywhere else).
      open.pop();
      this.closeFinished();
      return token;
    }
    if (open.length > 0) open[open.length - 1]--;
    const items = Type.equals(token.type, Type.array) ? token.value : Type.equals(token.type, Type.map) ? token.value * 2 : Type.equals(token.type, Type.tag) ? 1 : 0;
    if (items > 0) {
      open.push(items);
      if (open.length > MAX_NESTING_DEPTH) throw new Error(nestingMessage('CBOR body'));
    } else {
      this.closeFinished();
    }
    return token;
  }

  /** Containers whose last item was just read are complete. */
  private closeFinished(): void {
    const open = this.open;
    while (open.length > 0 && open[open.length - 1] === 0) open.pop();
  }
}
