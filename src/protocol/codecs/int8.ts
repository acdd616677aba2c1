// Blockwise int8 codec: the values in blocks of INT8_BLOCK, each block one float32 scale (its largest magnitude
// / 127) and one signed byte per value (round(v / scale)). About 1.016 bytes per value, a quarter of float32;
// the error of each value is at most half its block's scale. Layout: scales (float32 LE, ceil(P / block) of
// them), then P int8 values.
import { ProtocolError } from '../errors';

export const INT8_BLOCK = 256;

export function int8Blocks(paramCount: number): number {
  return Math.ceil(paramCount / INT8_BLOCK);
}

export function int8PayloadBytes(paramCount: number): number {
  return int8Blocks(paramCount) * 4 + paramCount;
}

/** Encodes `values` into `out` (int8PayloadBytes(values.length) bytes). */
export function encodeInt8(values: Float32Array, out: Uint8Array): void {
  const n = values.length;
  const blocks = int8Blocks(n);
  if (out.byteLength < int8PayloadBytes(n)) throw new RangeError(`int8 needs ${int8PayloadBytes(n)} bytes, got ${out.byteLength}`);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const q = new Int8Array(out.buffer, out.byteOffset + blocks * 4, n);
  for (let b = 0; b < blocks; b++) {
    const start = b * INT8_BLOCK;
    const end = Math.min(n, start + INT8_BLOCK);
    let max = 0;
    for (let i = start; i < end; i++) {
      const a = Math.abs(values[i]);
      if (a > max) max = a;
    }
    // The scale as it will be read back (float32), so encoder and decoder divide and multiply by the same number.
    const scale = Math.fround(max / 127);
    view.setFloat32(b * 4, scale, true);
    if (scale === 0 || !Number.isFinite(scale)) {
      for (let i = start; i < end; i++) q[i] = 0;
      continue;
    }
    const inv = 1 / scale;
    for (let i = start; i < end; i++) {
      const r = Math.round(values[i] * inv);
      q[i] = r > 127 ? 127 : r < -127 ? -127 : r;
    }
  }
}

/**
 * Decodes straight into `dst`. Every scale is checked (finite, not negative) before anything is written, so a
 * hostile frame is refused with a coded error and leaves the slot as it was.
 */
export function decodeInt8Into(payload: Uint8Array, dst: Float32Array): void {
  const n = dst.length;
  const blocks = int8Blocks(n);
  if (payload.byteLength !== int8PayloadBytes(n)) {
    throw new ProtocolError('FRAME_SIZE_MISMATCH', `int8 payload of ${payload.byteLength} bytes for ${n} parameters (expected ${int8PayloadBytes(n)})`);
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  for (let b = 0; b < blocks; b++) {
    const scale = view.getFloat32(b * 4, true);
    if (!Number.isFinite(scale) || scale < 0) {
      throw new ProtocolError('FRAME_BAD_PAYLOAD', `int8 block ${b} has scale ${scale}; scales must be finite and not negative`);
    }
  }
  const q = new Int8Array(payload.buffer, payload.byteOffset + blocks * 4, n);
  for (let b = 0; b < blocks; b++) {
    const scale = view.getFloat32(b * 4, true);
    const end = Math.min(n, (b + 1) * INT8_BLOCK);
    for (let i = b * INT8_BLOCK; i < end; i++) dst[i] = q[i] * scale;
  }
}
