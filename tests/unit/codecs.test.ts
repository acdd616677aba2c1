// Update codecs, bytes in -> bytes out: each round trip within its error bound, hostile payloads refused with
// coded errors before the slot is touched, and error feedback losing nothing over many steps.
import { describe, expect, it } from 'vitest';
import { decodeInto, ErrorFeedback, expectedPayloadBytes, FrameCodec, INT8_BLOCK, payloadBytes, topKCount } from '../../src/protocol/codecs';
import { toHalfBits } from '../../src/protocol/codecs/fp16';
import { ProtocolError } from '../../src/protocol/errors';
import { decodeFrame, decodeFrameInto, decodeHeader, encodeCodedFrame, encodeFrame, FRAME_HEADER_BYTES, FrameKind } from '../../src/protocol/frame';
import { rng as seededRandom } from '../support/random';

const fields = { kind: FrameKind.PseudoGradient, sessionId: 2, round: 5, nodeId: 9, attempt: 3, modelVersion: 4, sampleCount: 512, trainLoss: 0.5 };

function gaussian(n: number, seed: number, scale = 1): Float32Array {
  const rand = seededRandom(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(rand() || 1e-12)) * Math.cos(2 * Math.PI * rand());
  return out;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    return (error as ProtocolError).code;
  }
  throw new Error('expected a ProtocolError');
}

/** Encodes through the frame (bytes out), decodes from the bytes into a fresh slot (bytes in). */
function roundTrip(codec: FrameCodec, values: Float32Array, topKFraction?: number): { bytes: Uint8Array; slot: Float32Array } {
  const bytes = encodeCodedFrame(fields, Float32Array.from(values), codec, { topKFraction });
  const slot = new Float32Array(values.length).fill(123);
  const { header } = decodeFrameInto(bytes, slot);
  expect(header).toMatchObject({ ...fields, codec, paramCount: values.length });
  return { bytes, slot };
}

describe('fp16 codec', () => {
  it('rounds to nearest even at the half boundaries', () => {
    expect(toHalfBits(1)).toBe(0x3c00);
    expect(toHalfBits(-2)).toBe(0xc000);
    expect(toHalfBits(65504)).toBe(0x7bff);
    expect(toHalfBits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(toHalfBits(Number.NaN) & 0x7c00).toBe(0x7c00);
  });

  it('round-trips within 2^-11 relative (2^-25 absolute near zero), at half the bytes', () => {
    const values = gaussian(10_001, 1, 3);
    values[0] = 1e-9;
    values[1] = 1e6; // clamped to the largest half
    const { bytes, slot } = roundTrip(FrameCodec.Float16, values);
    expect(bytes.byteLength).toBe(FRAME_HEADER_BYTES + 2 * values.length);
    expect(slot[1]).toBe(65504);
    for (let i = 2; i < values.length; i++) expect(Math.abs(slot[i] - values[i])).toBeLessThanOrEqual(Math.max(Math.abs(values[i]) * 2 ** -11, 2 ** -25));
    expect(Math.abs(slot[0] - 1e-9)).toBeLessThanOrEqual(2 ** -25);
  });

  it('catches a half Inf or NaN in the slot checks (the checksum cannot be forged around them)', () => {
    const bytes = encodeCodedFrame(fields, new Float32Array([1, 2, 3, 4]), FrameCodec.Float16);
    bytes[FRAME_HEADER_BYTES + 1] = 0x7c; // 1.0 -> +Inf
    expect(codeOf(() => decodeFrameInto(bytes, new Float32Array(4)))).toBe('CHECKSUM');
  });
});

describe('blockwise int8 codec', () => {
  it('round-trips within half a block scale, at about a quarter of the bytes', () => {
    const values = gaussian(3 * INT8_BLOCK + 17, 2);
    for (let i = INT8_BLOCK; i < 2 * INT8_BLOCK; i++) values[i] *= 1000; // a block of its own scale
    for (let i = 2 * INT8_BLOCK; i < 3 * INT8_BLOCK; i++) values[i] = 0; // an all-zero block (scale 0)
    const { bytes, slot } = roundTrip(FrameCodec.Int8Block, values);
    expect(bytes.byteLength).toBe(FRAME_HEADER_BYTES + 4 * 4 + values.length);
    for (let b = 0; b < 4; b++) {
      const block = values.subarray(b * INT8_BLOCK, (b + 1) * INT8_BLOCK);
      const scale = Math.max(...Array.from(block, Math.abs)) / 127;
      for (let i = b * INT8_BLOCK; i < Math.min(values.length, (b + 1) * INT8_BLOCK); i++) {
        expect(Math.abs(slot[i] - values[i])).toBeLessThanOrEqual(scale / 2 + 1e-6 * scale);
      }
    }
  });

  it('refuses NaN, infinite and negative scales before writing the slot', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, -1]) {
      const bytes = encodeCodedFrame(fields, gaussian(600, 3), FrameCodec.Int8Block);
      new DataView(bytes.buffer).setFloat32(FRAME_HEADER_BYTES + 4, bad, true);
      const slot = new Float32Array(600).fill(7);
      expect(codeOf(() => decodeFrameInto(bytes, slot))).toBe('FRAME_BAD_PAYLOAD');
      expect(slot.every((v) => v === 7)).toBe(true);
    }
  });
});

describe('top-k codec', () => {
  it('keeps exactly the k largest magnitudes, at 8 bytes each, zeros elsewhere', () => {
    const values = gaussian(20_000, 4);
    const k = topKCount(values.length, 0.01);
    const { bytes, slot } = roundTrip(FrameCodec.TopK, values, 0.01);
    expect(bytes.byteLength).toBe(FRAME_HEADER_BYTES + 4 + 8 * k);
    const kept = Array.from(slot).filter((v) => v !== 0).length;
    expect(kept).toBe(k);
    const threshold = Array.from(values, Math.abs).sort((a, b) => b - a)[k - 1];
    for (let i = 0; i < values.length; i++) {
      if (Math.abs(values[i]) > threshold) expect(slot[i]).toBe(values[i]);
      if (slot[i] !== 0) expect(slot[i]).toBe(values[i]);
    }
  });

  it('takes exactly k when many values tie at the threshold', () => {
    const values = new Float32Array(100).fill(1);
    values[50] = 5;
    const { slot } = roundTrip(FrameCodec.TopK, values, 0.1);
    expect(Array.from(slot).filter((v) => v !== 0).length).toBe(10);
    expect(slot[50]).toBe(5);
  });

  function topKFrame(P: number, k: number, indices: number[], declaredK = k): Uint8Array {
    const bytes = new Uint8Array(FRAME_HEADER_BYTES + 4 + 8 * k);
    bytes.set(encodeCodedFrame(fields, new Float32Array(P), FrameCodec.Float32).subarray(0, FRAME_HEADER_BYTES));
    const v = new DataView(bytes.buffer);
    v.setUint8(7, FrameCodec.TopK);
    v.setUint32(FRAME_HEADER_BYTES, declaredK, true);
    indices.forEach((index, j) => {
      v.setUint32(FRAME_HEADER_BYTES + 4 + 4 * j, index, true);
      v.setFloat32(FRAME_HEADER_BYTES + 4 + 4 * k + 4 * j, 1, true);
    });
    return bytes;
  }

  it('refuses k > P, wrong lengths, out-of-range, unsorted and duplicate indices with coded errors', () => {
    expect(codeOf(() => decodeHeader(topKFrame(10, 11, Array.from({ length: 11 }, (_, i) => i))))).toBe('FRAME_BAD_PAYLOAD');
    expect(codeOf(() => decodeHeader(topKFrame(10, 2, [1, 2], 3)))).toBe('FRAME_TRUNCATED');
    expect(codeOf(() => decodeHeader(topKFrame(10, 3, [1, 2, 3], 2)))).toBe('FRAME_SIZE_MISMATCH');
    expect(codeOf(() => decodeHeader(topKFrame(10, 0, []).subarray(0, FRAME_HEADER_BYTES + 2)))).toBe('FRAME_TRUNCATED');
    for (const indices of [[1, 10], [5, 3], [4, 4], [0xffffffff, 0]]) {
      const slot = new Float32Array(10).fill(7);
      expect(codeOf(() => decodeFrameInto(topKFrame(10, 2, indices), slot))).toBe('FRAME_BAD_PAYLOAD');
      expect(slot.every((v) => v === 7)).toBe(true);
    }
  });
});

describe('codec framing', () => {
  it('checks every codec\'s declared length against the bytes before decoding', () => {
    for (const codec of [FrameCodec.Float32, FrameCodec.Float16, FrameCodec.Int8Block, FrameCodec.TopK]) {
      const bytes = encodeCodedFrame(fields, gaussian(1000, 5), codec);
      expect(decodeHeader(bytes).codec).toBe(codec);
      expect(expectedPayloadBytes(codec, 1000, bytes.subarray(FRAME_HEADER_BYTES))).toBe(bytes.byteLength - FRAME_HEADER_BYTES);
      expect(codeOf(() => decodeHeader(bytes.subarray(0, bytes.byteLength - 1)))).toBe('FRAME_TRUNCATED');
      const longer = new Uint8Array(bytes.byteLength + 4);
      longer.set(bytes);
      expect(codeOf(() => decodeHeader(longer))).toBe('FRAME_SIZE_MISMATCH');
      // A payload tampered after sealing fails the checksum over the decoded values.
      const tampered = Uint8Array.from(bytes);
      tampered[tampered.byteLength - 1] ^= 0x40;
      expect(['CHECKSUM', 'FRAME_BAD_PAYLOAD']).toContain(codeOf(() => decodeFrameInto(tampered, new Float32Array(1000))));
    }
  });

  it('refuses unknown codecs and compressed model frames', () => {
    const bytes = encodeFrame({ ...fields, kind: FrameKind.Model }, new Float32Array(4));
    bytes[7] = 9;
    expect(codeOf(() => decodeHeader(bytes))).toBe('FRAME_BAD_CODEC');
    bytes[7] = FrameCodec.Float16;
    expect(codeOf(() => decodeHeader(bytes))).toBe('FRAME_BAD_CODEC');
  });

  it('decodes compressed frames from unaligned bytes (ws hands out slices at any offset)', () => {
    const values = gaussian(777, 6);
    for (const codec of [FrameCodec.Float16, FrameCodec.Int8Block, FrameCodec.TopK]) {
      const bytes = encodeCodedFrame(fields, Float32Array.from(values), codec);
      const shifted = new Uint8Array(bytes.byteLength + 3);
      shifted.set(bytes, 3);
      const slot = new Float32Array(777);
      decodeFrameInto(shifted.subarray(3), slot);
      expect(Array.from(decodeFrame(bytes).payload)).toEqual(Array.from(slot));
    }
  });

  it('decodeInto writes nothing but the slot and sizes agree with payloadBytes', () => {
    const values = gaussian(513, 7);
    for (const codec of [FrameCodec.Float16, FrameCodec.Int8Block, FrameCodec.TopK]) {
      const bytes = encodeCodedFrame(fields, Float32Array.from(values), codec, { topKFraction: 0.05 });
      expect(bytes.byteLength - FRAME_HEADER_BYTES).toBe(payloadBytes(codec, 513, { topKFraction: 0.05 }));
      const slot = new Float32Array(513);
      decodeInto(codec, bytes.subarray(FRAME_HEADER_BYTES), slot);
      expect(slot.some((v) => v !== 0)).toBe(true);
    }
  });
});

describe('error feedback', () => {
  it('preserves the sum over steps: what was sent plus the residual equals what was meant', () => {
    for (const codec of [FrameCodec.Float16, FrameCodec.Int8Block, FrameCodec.TopK]) {
      const P = 2000;
      const feedback = new ErrorFeedback(P);
      const intended = new Float64Array(P);
      const sent = new Float64Array(P);
      for (let step = 0; step < 50; step++) {
        const update = gaussian(P, 100 + step, 0.01);
        for (let i = 0; i < P; i++) intended[i] += update[i];
        const bytes = encodeCodedFrame(fields, update, codec, { feedback, topKFraction: 0.01 });
        const slot = new Float32Array(P);
        decodeFrameInto(bytes, slot);
        for (let i = 0; i < P; i++) sent[i] += slot[i];
      }
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < P; i++) {
        worst = Math.max(worst, Math.abs(sent[i] + feedback.residual[i] - intended[i]));
        scale = Math.max(scale, Math.abs(intended[i]));
      }
      // Float32 rounding of 50 additions, nothing more.
      expect(worst).toBeLessThan(1e-5 * Math.max(1, scale));
      if (codec === FrameCodec.TopK) expect(Math.max(...Array.from(feedback.residual, Math.abs))).toBeGreaterThan(0);
    }
  });

  it('a float32 update after lossy ones sends the residual and clears it', () => {
    const feedback = new ErrorFeedback(100);
    encodeCodedFrame(fields, gaussian(100, 8), FrameCodec.TopK, { feedback, topKFraction: 0.05 });
    const residual = Float32Array.from(feedback.residual);
    const bytes = encodeCodedFrame(fields, new Float32Array(100), FrameCodec.Float32, { feedback });
    expect(Array.from(decodeFrame(bytes).payload)).toEqual(Array.from(residual));
    expect(feedback.residual.every((v) => v === 0)).toBe(true);
  });
});
