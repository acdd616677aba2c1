// Property-based fuzzing of the frame decoder: random bytes and mutations of valid frames must either decode
// to exactly what was encoded or fail with a ProtocolError - never another exception, never a wrong payload.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../src/protocol/errors';
import { checksum32, countNonFinite, decodeFrame, decodeFrameInto, encodeFrame, FRAME_HEADER_BYTES, FrameKind, inspectPayload } from '../../src/protocol/frame';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const fields = fc.record({
  kind: fc.constantFrom(FrameKind.Gradient, FrameKind.PseudoGradient),
  sessionId: u32,
  round: u32,
  nodeId: u32,
  attempt: u32,
  modelVersion: u32,
  sampleCount: u32,
  trainLoss: fc.float({ noNaN: true, noDefaultInfinity: true }),
});
const payload = fc.float32Array({ noNaN: true, noDefaultInfinity: true, maxLength: 300 });

function decodesOrRejects(bytes: Uint8Array): void {
  try {
    decodeFrame(bytes);
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw error;
    expect(error.message.length).toBeGreaterThan(5);
  }
}

describe('frame decoder under fuzzing', () => {
  it('round-trips any valid frame exactly', () => {
    fc.assert(
      fc.property(fields, payload, (f, values) => {
        const { header, payload: decoded } = decodeFrame(encodeFrame(f, values));
        expect(header).toMatchObject({ ...f, trainLoss: Math.fround(f.trainLoss), paramCount: values.length });
        expect(new Uint8Array(decoded.buffer, decoded.byteOffset, decoded.byteLength)).toEqual(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects random bytes with a ProtocolError and nothing else', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => decodesOrRejects(bytes)), { numRuns: 2000 });
  });

  it('random bytes behind a valid magic and version still only decode or reject', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 400 }), (tail) => {
        const bytes = new Uint8Array(8 + tail.length);
        bytes.set([0x48, 0x47, 0x50, 0x55, 1, 0, 1, 0]);
        bytes.set(tail, 8);
        decodesOrRejects(bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('any mutation of a valid frame (flipped bytes, truncation, extension) is rejected or decodes to the same data', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    );
    fc.assert(
      fc.property(fields, payload, fc.array(mutation, { minLength: 1, maxLength: 4 }), (f, values, mutations) => {
        let bytes = encodeFrame(f, values);
        for (const m of mutations) {
          if (m.kind === 'flip') {
            bytes = bytes.slice();
            bytes[m.at % bytes.length] ^= m.bits;
          } else if (m.kind === 'truncate') {
            bytes = bytes.slice(0, m.at % bytes.length);
          } else {
            const longer = new Uint8Array(bytes.length + m.extra.length);
            longer.set(bytes);
            longer.set(m.extra, bytes.length);
            bytes = longer;
          }
        }
        let decoded;
        try {
          decoded = decodeFrame(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(ProtocolError);
          return;
        }
        // A mutation that survived can only have touched header fields outside the payload checksum
        // (ids, counts of samples, loss): the payload itself must be intact.
        expect(decoded.payload.length).toBe(values.length);
        expect(new Uint8Array(decoded.payload.buffer, decoded.payload.byteOffset, decoded.payload.byteLength)).toEqual(
          new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
        );
      }),
      { numRuns: 1500 },
    );
  });

  it('decodeFrameInto never writes a payload it then rejects past the target bounds', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: FRAME_HEADER_BYTES, maxLength: 200 }), fc.nat({ max: 40 }), (bytes, size) => {
        const target = new Float32Array(size);
        try {
          decodeFrameInto(bytes, target);
        } catch (error) {
          expect(error).toBeInstanceOf(ProtocolError);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('the one-pass inspection agrees with the separate checks on any values, NaN and Inf included', () => {
    fc.assert(
      fc.property(fc.float32Array({ maxLength: 70 }), (values) => {
        const words = new Uint32Array(values.buffer, values.byteOffset, values.length);
        const stats = inspectPayload(values);
        expect(stats.checksum).toBe(checksum32(words));
        expect(stats.nonFinite).toBe(countNonFinite(words));
      }),
      { numRuns: 1000 },
    );
  });
});
