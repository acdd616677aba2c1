// Top-k sparsification: only the k largest values by magnitude travel, as (index, value) pairs; the rest are
// zero at the receiver (the agent keeps what it left out in its error-feedback residual and sends it later).
// Layout: u32 k, then k u32 indices in strictly increasing order, then k float32 values (all little-endian).
// 8 bytes per kept value: k = P/100 is 50x fewer bytes than float32.
import { ProtocolError } from '../errors';

export function topKPayloadBytes(k: number): number {
  return 4 + 8 * k;
}

/** k for a fraction of P: at least 1 (for P > 0), at most P. */
export function topKCount(paramCount: number, fraction: number): number {
  if (paramCount === 0) return 0;
  return Math.max(1, Math.min(paramCount, Math.round(paramCount * fraction)));
}

/** Reads k from a payload (validated against P by the frame header check), or null when it is too short. */
export function readTopK(payload: Uint8Array): number | null {
  if (payload.byteLength < 4) return null;
  return new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0, true);
}

/**
 * Encodes the k largest |values| into `out` (topKPayloadBytes(k) bytes). `scratch` (at least values.length)
 * holds magnitudes for the selection; ties at the threshold are taken in index order until k are chosen.
 */
export function encodeTopK(values: Float32Array, k: number, out: Uint8Array, scratch: Float32Array = new Float32Array(values.length)): void {
  const n = values.length;
  if (!Number.isInteger(k) || k < 0 || k > n) throw new RangeError(`top-k needs 0 <= k <= ${n}, got ${k}`);
  if (out.byteLength < topKPayloadBytes(k)) throw new RangeError(`top-k needs ${topKPayloadBytes(k)} bytes, got ${out.byteLength}`);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(0, k, true);
  if (k === 0) return;
  const mags = scratch.subarray(0, n);
  for (let i = 0; i < n; i++) mags[i] = Math.abs(values[i]);
  const threshold = kthLargest(mags, k);
  // Strictly above the threshold first (there are fewer than k of them), then ties, in index order.
  let above = 0;
  for (let i = 0; i < n; i++) if (Math.abs(values[i]) > threshold) above++;
  let ties = k - above;
  let j = 0;
  const valuesAt = 4 + 4 * k;
  for (let i = 0; i < n && j < k; i++) {
    const a = Math.abs(values[i]);
    if (a > threshold || (a === threshold && ties-- > 0)) {
      view.setUint32(4 + 4 * j, i, true);
      view.setFloat32(valuesAt + 4 * j, values[i], true);
      j++;
    }
  }
}

/** The k-th largest value of `a` (1-based); reorders `a` (Hoare quickselect, median of three). */
function kthLargest(a: Float32Array, k: number): number {
  const target = a.length - k; // index of the k-th largest in ascending order
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const pivot = median3(a[lo], a[mid], a[hi]);
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else break;
  }
  return a[target];
}

function median3(x: number, y: number, z: number): number {
  return x < y ? (y < z ? y : x < z ? z : x) : x < z ? x : y < z ? z : y;
}

/**
 * Decodes into `dst`: zeros, then the k values at their indices. The indices are checked first (each below P,
 * strictly increasing, so no duplicates), so a hostile frame is refused before the slot is touched.
 */
export function decodeTopKInto(payload: Uint8Array, dst: Float32Array): void {
  const k = readTopK(payload);
  if (k === null || k > dst.length || payload.byteLength !== topKPayloadBytes(k)) {
    throw new ProtocolError('FRAME_SIZE_MISMATCH', `top-k payload of ${payload.byteLength} bytes does not hold k = ${k} of ${dst.length} parameters`);
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  let previous = -1;
  for (let j = 0; j < k; j++) {
    const index = view.getUint32(4 + 4 * j, true);
    if (index >= dst.length || index <= previous) {
      throw new ProtocolError(
        'FRAME_BAD_PAYLOAD',
        index >= dst.length
          ? `top-k index ${index} at position ${j} is out of range for ${dst.length} parameters`
          : `top-k indices must be strictly increasing: ${index} after ${previous} at position ${j}`,
      );
    }
    previous = index;
  }
  dst.fill(0);
  const valuesAt = 4 + 4 * k;
  for (let j = 0; j < k; j++) dst[view.getUint32(4 + 4 * j, true)] = view.getFloat32(valuesAt + 4 * j, true);
}
