// fp16 codec: each value as an IEEE 754 half (2 bytes, little-endian), rounded to nearest even. Halves the bytes
// of a float32 update; relative error at most 2^-11 for |v| >= 2^-14 (absolute 2^-25 below that). Finite values
// beyond the half range are clamped to +-65504 by the encoder (an Inf would only be rejected at the coordinator).
import { ProtocolError } from '../errors';

/** Largest finite half. */
export const FP16_MAX = 65504;

export function fp16PayloadBytes(paramCount: number): number {
  return paramCount * 2;
}

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** The half bits of a float32 value (round to nearest, ties to even; NaN stays NaN, overflow becomes Inf). */
export function toHalfBits(value: number): number {
  scratchF32[0] = value;
  const x = scratchU32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half: value / 2^-24, rounded. Below half the smallest subnormal it rounds to zero.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rest > mid || (rest === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, which is the right rounding (up to Inf at the top).
  if (rest > 0x1000 || (rest === 0x1000 && half & 1)) half++;
  return sign | half;
}

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

let table: Float32Array | null = null;
/** All 65,536 halves as float32 (256 KiB, built on first use): decoding is one table read per value. */
function halfTable(): Float32Array {
  if (!table) {
    table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) table[h] = halfToNumber(h);
  }
  return table;
}

/** Writes `values` as halves into `out` (at least 2 x values.length bytes). */
export function encodeFp16(values: Float32Array, out: Uint8Array): void {
  if (out.byteLength < values.length * 2) throw new RangeError(`fp16 needs ${values.length * 2} bytes, got ${out.byteLength}`);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const h = toHalfBits(v > FP16_MAX ? FP16_MAX : v < -FP16_MAX ? -FP16_MAX : v);
    out[2 * i] = h & 0xff;
    out[2 * i + 1] = h >>> 8;
  }
}

/** Decodes halves straight into `dst` (the aggregation slot). Length was validated with the header. */
export function decodeFp16Into(payload: Uint8Array, dst: Float32Array): void {
  if (payload.byteLength !== dst.length * 2) {
    throw new ProtocolError('FRAME_SIZE_MISMATCH', `fp16 payload of ${payload.byteLength} bytes for ${dst.length} parameters (expected ${dst.length * 2})`);
  }
  const t = halfTable();
  for (let i = 0; i < dst.length; i++) dst[i] = t[payload[2 * i] | (payload[2 * i + 1] << 8)];
}
