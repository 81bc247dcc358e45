// Blob members in JSON (base64 text) through the model validator (src/models/validate.ts): its
// quick decode must accept exactly what Coral's checks accept (length a multiple of 4, the
// alphabet, '=' only at the end, canonical last group) and leave every refusal, with its message,
// to those checks. Compared, on valid and damaged texts of every length class, with the checks
// written out as the validator made them before (alphabet regex, then a full re-encode).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ModelValidator } from '../src/models/validate.js';
import type { ServiceModel } from '../src/models/types.js';
import { seeded } from './helpers/random.js';

const model = {
  metadata: { apiVersion: '1', endpointPrefix: 'x', protocol: 'json', serviceId: 'X' },
  operations: { Op: { name: 'Op', http: { method: 'POST', requestUri: '/' }, input: { shape: 'In' } } },
  shapes: {
    In: { type: 'structure', members: { Data: { shape: 'Data' } } },
    Data: { type: 'blob' },
  },
} as unknown as ServiceModel;

const validator = new ModelValidator(model);

/** Coral's checks written out, as the validator ran them on every blob before. */
function reference(v: string): { ok: true; bytes: Buffer } | { ok: false; message: string } {
  const shown = `'${v}'`;
  if (v.length % 4 !== 0) return { ok: false, message: `${shown} can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: ${v.length}` };
  const bad = /[^A-Za-z0-9+/=]|=[^=]/.exec(v);
  if (bad) return { ok: false, message: `${shown} can not be converted to a Blob: Invalid Base64 character: '${bad[0][0]}'` };
  const out = Buffer.from(v, 'base64');
  if (out.toString('base64') !== v) return { ok: false, message: `${shown} can not be converted to a Blob: Invalid last non-pad Base64 character dectected` };
  return { ok: true, bytes: out };
}

function check(v: string): void {
  const want = reference(v);
  const got = validator.validate<{ Data?: Buffer }>('Op', { Data: v });
  if (want.ok) {
    assert.ok(got.ok, `accepted: ${JSON.stringify(v)}`);
    assert.deepEqual(got.value.Data ?? Buffer.alloc(0), want.bytes, JSON.stringify(v));
  } else {
    assert.ok(!got.ok, `refused: ${JSON.stringify(v)}`);
    assert.equal(got.error.code, 'SerializationException');
    assert.ok(got.error.message.includes(want.message.slice(want.message.indexOf(' can not'))), `${JSON.stringify(v)}: ${got.error.message}`);
  }
}

test('base64 blobs: accepted and refused exactly as Coral checks them, with the same message', () => {
  const rng = seeded(16);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const strange = ['=', '-', '_', ' ', '\n', '.', 'é', '😀', '\u0000', '\u00ff', '%'];
  const fixed = ['', 'QQ==', 'QR==', 'QUI=', 'QUJ=', 'QUJD', 'A===', '====', 'AB==CDEF', 'AB=x', 'QUJ-', 'QUJ_', 'QU J', 'QQ=A', '=QQQ', 'QQQQ===='];
  for (const v of fixed) check(v);
  let n = fixed.length;
  for (let i = 0; i < 3000; i++) {
    const len = Math.floor(rng.next() * 40);
    let v = Buffer.from(Array.from({ length: len }, () => Math.floor(rng.next() * 256))).toString('base64');
    const r = rng.next();
    if (r < 0.3 && v.length > 0) {
      // One character replaced by something outside the alphabet, or by '='.
      const at = Math.floor(rng.next() * v.length);
      v = v.slice(0, at) + strange[Math.floor(rng.next() * strange.length)] + v.slice(at + 1);
    } else if (r < 0.5 && v.length > 0) {
      // One character replaced by another of the alphabet: non-canonical trailing bits when it is the last before the padding.
      const at = rng.next() < 0.5 ? v.replace(/=+$/, '').length - 1 : Math.floor(rng.next() * v.length);
      if (at >= 0) v = v.slice(0, at) + alphabet[Math.floor(rng.next() * 64)] + v.slice(at + 1);
    } else if (r < 0.6) {
      v += '=';
    }
    check(v);
    n++;
  }
  assert.equal(n, fixed.length + 3000);
});
