import { describe, expect, it } from 'vitest';
import {
  allocateFrame,
  checksum32,
  decodeFrame,
  decodeFrameInto,
  decodeHeader,
  encodeFrame,
  FRAME_HEADER_BYTES,
  FrameKind,
  MAX_FRAME_PARAMS,
  PROTOCOL_VERSION,
  sealFrame,
} from '../../src/protocol/frame';
import { ProtocolError } from '../../src/protocol/errors';

const fields = { kind: FrameKind.Gradient, sessionId: 7, round: 12, nodeId: 3, attempt: 1, modelVersion: 11, sampleCount: 128, trainLoss: 0.25 };

function payload(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sin(i * 0.37 + seed) * 10;
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

describe('frame codec', () => {
  it('round-trips header fields and payload bit for bit', () => {
    const values = payload(1001);
    const bytes = encodeFrame(fields, values);
    expect(bytes.byteLength).toBe(FRAME_HEADER_BYTES + 1001 * 4);
    const { header, payload: decoded } = decodeFrame(bytes);
    expect(header).toMatchObject({ ...fields, version: PROTOCOL_VERSION, paramCount: 1001 });
    expect(header.trainLoss).toBeCloseTo(0.25, 6);
    expect(Array.from(decoded)).toEqual(Array.from(values));
  });

  it('decodes without copying when aligned, and correctly when not', () => {
    const bytes = encodeFrame(fields, payload(64));
    const aligned = decodeFrame(bytes);
    expect(aligned.payload.buffer).toBe(bytes.buffer);
    const shifted = new Uint8Array(bytes.byteLength + 1);
    shifted.set(bytes, 1);
    const unaligned = decodeFrame(shifted.subarray(1));
    expect(unaligned.payload.buffer).not.toBe(shifted.buffer);
    expect(Array.from(unaligned.payload)).toEqual(Array.from(aligned.payload));
  });

  it('decodes into a caller-owned buffer (an aggregator slot)', () => {
    const values = payload(33);
    const target = new Float32Array(new SharedArrayBuffer(33 * 4));
    const { header, stats } = decodeFrameInto(encodeFrame(fields, values), target);
    expect(stats.sumSquares).toBeCloseTo(values.reduce((s, v) => s + v * v, 0), 2);
    expect(header.paramCount).toBe(33);
    expect(Array.from(target)).toEqual(Array.from(values));
    expect(codeOf(() => decodeFrameInto(encodeFrame(fields, values), new Float32Array(32)))).toBe('PARAM_COUNT');
  });

  it('rejects truncated frames, bad magic, wrong version, unknown kind and size mismatch', () => {
    const bytes = encodeFrame(fields, payload(16));
    expect(codeOf(() => decodeFrame(bytes.subarray(0, 10)))).toBe('FRAME_TRUNCATED');
    expect(codeOf(() => decodeFrame(bytes.subarray(0, bytes.byteLength - 4)))).toBe('FRAME_TRUNCATED');
    const longer = new Uint8Array(bytes.byteLength + 4);
    longer.set(bytes);
    expect(codeOf(() => decodeFrame(longer))).toBe('FRAME_SIZE_MISMATCH');
    const badMagic = bytes.slice();
    badMagic[0] ^= 0xff;
    expect(codeOf(() => decodeFrame(badMagic))).toBe('FRAME_BAD_MAGIC');
    const badVersion = bytes.slice();
    new DataView(badVersion.buffer).setUint16(4, 99, true);
    expect(codeOf(() => decodeHeader(badVersion))).toBe('PROTOCOL_VERSION');
    const badKind = bytes.slice();
    badKind[6] = 42;
    expect(codeOf(() => decodeHeader(badKind))).toBe('FRAME_BAD_KIND');
    const huge = bytes.slice();
    new DataView(huge.buffer).setUint32(32, 0xffffffff, true);
    expect(codeOf(() => decodeHeader(huge))).toBe('FRAME_TOO_LARGE');
  });

  it('detects a corrupted payload by its checksum', () => {
    const bytes = encodeFrame(fields, payload(256));
    const corrupted = bytes.slice();
    corrupted[FRAME_HEADER_BYTES + 513] ^= 0x01;
    expect(codeOf(() => decodeFrame(corrupted))).toBe('CHECKSUM');
  });

  it('rejects NaN and infinite gradients but allows them nowhere else', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const values = payload(100);
      values[57] = bad;
      expect(codeOf(() => decodeFrame(encodeFrame(fields, values)))).toBe('NON_FINITE');
    }
  });

  it('checksum depends on order and length', () => {
    const a = new Uint32Array([1, 2, 3, 4, 5]);
    const b = new Uint32Array([2, 1, 3, 4, 5]);
    expect(checksum32(a)).not.toBe(checksum32(b));
    expect(checksum32(a.subarray(0, 4))).not.toBe(checksum32(a));
    expect(checksum32(new Uint32Array(0))).toBe(checksum32(new Uint32Array(0)));
  });

  it('a frame filled in place and sealed is byte for byte what encodeFrame makes, and decodes the same', () => {
    for (const n of [0, 1, 3, 1001, 109_386]) {
      const values = payload(n, n);
      const { bytes, body } = allocateFrame(n);
      expect(bytes.byteOffset % 4).toBe(0);
      expect(body.buffer).toBe(bytes.buffer);
      expect(body.byteOffset).toBe(FRAME_HEADER_BYTES);
      // Accumulate the way the agent does: a weighted sum of micro-batch gradients, straight into the body.
      for (let i = 0; i < n; i++) body[i] += values[i] * 0.5;
      for (let i = 0; i < n; i++) body[i] += values[i] * 0.5;
      expect(sealFrame(bytes, fields)).toBe(bytes);
      const reference = encodeFrame(fields, body.slice());
      expect(Buffer.from(bytes).equals(Buffer.from(reference))).toBe(true);
      const sealed = decodeFrame(bytes);
      const encoded = decodeFrame(reference);
      expect(sealed.header).toEqual(encoded.header);
      expect(sealed.payload.buffer).toBe(bytes.buffer);
      expect(Buffer.from(sealed.payload.buffer, sealed.payload.byteOffset, sealed.payload.byteLength).equals(Buffer.from(encoded.payload.buffer, encoded.payload.byteOffset, encoded.payload.byteLength))).toBe(true);
    }
  });

  it('sealing again after the body changed writes the new checksum, and reserved bytes stay zero', () => {
    const { bytes, body } = allocateFrame(64);
    body.set(payload(64));
    sealFrame(bytes, fields);
    body[10] += 1;
    bytes[50] = 0xaa;
    sealFrame(bytes, { ...fields, round: 13 });
    expect(decodeFrame(bytes).header.round).toBe(13);
    expect(Array.from(bytes.subarray(48, FRAME_HEADER_BYTES))).toEqual(new Array(16).fill(0));
    expect(Buffer.from(bytes).equals(Buffer.from(encodeFrame({ ...fields, round: 13 }, body.slice())))).toBe(true);
  });

  it('refuses to allocate or seal what cannot be a frame', () => {
    expect(() => allocateFrame(-1)).toThrow(RangeError);
    expect(() => allocateFrame(1.5)).toThrow(RangeError);
    expect(() => allocateFrame(MAX_FRAME_PARAMS + 1)).toThrow(RangeError);
    expect(() => sealFrame(new Uint8Array(10), fields)).toThrow(/allocateFrame/);
    expect(() => sealFrame(new Uint8Array(FRAME_HEADER_BYTES + 6), fields)).toThrow(/allocateFrame/);
    expect(() => sealFrame(new Uint8Array(FRAME_HEADER_BYTES + 9).subarray(1), fields)).toThrow(/allocateFrame/);
  });
});
