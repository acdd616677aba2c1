// checksum32 (protocol/frame.ts) in its faster form (two words per lane per iteration) against the formulation it
// replaced, written out below, on random payloads of every length 0..67 (all tails mod 8 and mod 4) and a few
// large ones, plus values pinned from the old code: the checksum is part of the wire format, so the value must
// not move. And sealFrame with a checksum handed in produces the very bytes it computes itself.
import { describe, expect, it } from 'vitest';
import { allocateFrame, checksum32, decodeFrame, encodeFrame, foldChecksum, FrameKind, sealFrame } from '../../src/protocol/frame';
import { rng } from '../support/random';

/** The original checksum32: four FNV multiply-xor lanes, word i to lane i % 4, the last n % 4 words to lane 0. */
function reference(words: Uint32Array): number {
  let a = 0x811c9dc5 | 0;
  let b = 0x01000193 | 0;
  let c = 0x9e3779b9 | 0;
  let d = 0x85ebca6b | 0;
  const n = words.length;
  const n4 = n - (n % 4);
  let i = 0;
  for (; i < n4; i += 4) {
    a = Math.imul(a ^ words[i], 0x01000193);
    b = Math.imul(b ^ words[i + 1], 0x01000193);
    c = Math.imul(c ^ words[i + 2], 0x01000193);
    d = Math.imul(d ^ words[i + 3], 0x01000193);
  }
  for (; i < n; i++) a = Math.imul(a ^ words[i], 0x01000193);
  return foldChecksum(a, b, c, d, n);
}

function randomWords(n: number, seed: number): Uint32Array {
  const next = rng(seed);
  return Uint32Array.from({ length: n }, () => Math.floor(next() * 2 ** 32) >>> 0);
}

describe('checksum32', () => {
  it('equals the original formulation for random payloads of every length 0..67', () => {
    for (let n = 0; n <= 67; n++) {
      const words = randomWords(n, 1000 + n);
      expect(checksum32(words), `n = ${n}`).toBe(reference(words));
    }
  });

  it.each([1_000_003, 262_144, 99_999])('equals the original formulation over %i random words, and on a subarray at an odd word offset', (n) => {
    const words = randomWords(n, n);
    expect(checksum32(words)).toBe(reference(words));
    const tail = words.subarray(3, n - 2);
    expect(checksum32(tail)).toBe(reference(tail));
  });

  it('keeps the values the wire format had (pinned from the original code)', () => {
    const w = new Uint32Array(1001);
    for (let i = 0; i < w.length; i++) w[i] = Math.imul(i + 1, 2654435761) >>> 0;
    expect(checksum32(w)).toBe(0x175e2594);
    expect(checksum32(w.subarray(0, 7))).toBe(0x9c84739e);
    expect(checksum32(new Uint32Array(0))).toBe(0x05d95f12);
  });

  it('sees a change in any word, tail words included', () => {
    const words = randomWords(37, 5);
    const before = checksum32(words);
    for (const i of [0, 3, 31, 32, 35, 36]) {
      const changed = words.slice();
      changed[i] ^= 1;
      expect(checksum32(changed), `word ${i}`).not.toBe(before);
    }
  });
});

describe('sealFrame with a checksum handed in', () => {
  it('gives the bytes it computes itself, and those decode', () => {
    const values = Float32Array.from(randomWords(1003, 9), (w) => (w / 2 ** 32) * 2 - 1);
    const fields = { kind: FrameKind.Model, sessionId: 2, round: 7, nodeId: 0, attempt: 0, modelVersion: 6, sampleCount: 0, trainLoss: Number.NaN };
    const { bytes, body } = allocateFrame(values.length);
    body.set(values);
    const sealed = sealFrame(bytes, fields, checksum32(new Uint32Array(values.buffer)));
    expect(Buffer.from(sealed).equals(Buffer.from(encodeFrame(fields, values)))).toBe(true);
    expect(decodeFrame(sealed).payload).toEqual(values);
  });

  it('a wrong checksum handed in is refused by the receiver (the caller must pass the exact value)', () => {
    const values = new Float32Array([1, 2, 3]);
    const { bytes, body } = allocateFrame(3);
    body.set(values);
    const sealed = sealFrame(bytes, { kind: FrameKind.Model, sessionId: 1, round: 1, nodeId: 0, attempt: 0, modelVersion: 0, sampleCount: 0, trainLoss: Number.NaN }, 12345);
    expect(() => decodeFrame(sealed)).toThrow(/checksum/);
  });
});
