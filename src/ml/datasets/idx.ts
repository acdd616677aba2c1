// IDX, the file format MNIST ships in: two zero bytes, a data-type byte, a dimension count, one
// big-endian u32 per dimension, then the data in row-major order. Only unsigned bytes (0x08) are
// supported: that is what image and label files use, and it lets the data stay a zero-copy view.

import { constants as zlibConstants, gunzipSync } from 'node:zlib';

export interface IdxArray {
  dims: number[];
  /** Row-major values; a view into the input (or into the gunzipped copy), not a copy. */
  data: Uint8Array;
}

const TYPE_NAMES: Record<number, string> = {
  0x08: 'unsigned byte',
  0x09: 'signed byte',
  0x0b: 'int16',
  0x0c: 'int32',
  0x0d: 'float32',
  0x0e: 'float64',
};

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * The most bytes one IDX file may hold once gunzipped (1 GiB; MNIST's largest file is 47 MB). A gzip stream is
 * refused before it is inflated past this, or past the size its own IDX header declares (a gzip bomb costs us
 * nothing beyond the header's promise).
 */
export const MAX_IDX_BYTES = 1 << 30;

export interface ParseIdxOptions {
  /** Overall cap on the (gunzipped) file, in bytes; default MAX_IDX_BYTES. */
  maxBytes?: number;
}

/** Parses an IDX file (gunzipping it first if it starts with the gzip magic). */
export function parseIdx(bytes: Uint8Array, name = 'IDX data', options: ParseIdxOptions = {}): IdxArray {
  const maxBytes = options.maxBytes ?? MAX_IDX_BYTES;
  if (isGzip(bytes)) {
    bytes = gunzipBounded(bytes, name, maxBytes);
  } else if (bytes.length > maxBytes) {
    throw new Error(`${name}: ${bytes.length} bytes, over the ${maxBytes}-byte limit for one IDX file`);
  }
  if (bytes.length < 4) {
    throw new Error(`${name}: truncated IDX header (${bytes.length} bytes; need at least 4)`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const got = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new Error(`${name}: not an IDX file (magic must start with 00 00, got ${got})`);
  }
  const type = bytes[2];
  if (type !== 0x08) {
    const typeName = TYPE_NAMES[type] ?? 'unknown';
    throw new Error(
      `${name}: unsupported IDX data type 0x${type.toString(16).padStart(2, '0')} (${typeName}); ` +
        'only 0x08 (unsigned byte) is supported',
    );
  }
  const ndims = bytes[3];
  if (ndims === 0) throw new Error(`${name}: IDX file declares 0 dimensions`);
  const headerSize = 4 + 4 * ndims;
  if (bytes.length < headerSize) {
    throw new Error(`${name}: truncated IDX header (${bytes.length} bytes; ${ndims} dimensions need ${headerSize})`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const dim = view.getUint32(4 + 4 * i, false);
    dims.push(dim);
    count *= dim;
  }
  const available = bytes.length - headerSize;
  if (available < count) {
    throw new Error(
      `${name}: truncated IDX data (dims ${dims.join('x')} need ${count} bytes, file has ${available})`,
    );
  }
  if (available > count) {
    throw new Error(
      `${name}: ${available - count} unexpected bytes after the IDX data (dims ${dims.join('x')}); ` +
        'the file is probably not what its header says',
    );
  }
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerSize, count) };
}

/** Bytes an IDX file with this header must hold in all; Infinity when the header is cut short. */
function declaredIdxSize(head: Uint8Array): number {
  if (head.length < 4) return Infinity;
  const ndims = head[3];
  const headerSize = 4 + 4 * ndims;
  if (head.length < headerSize) return Infinity;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let count = 1;
  for (let i = 0; i < ndims; i++) count *= view.getUint32(4 + 4 * i, false);
  return headerSize + count;
}

/**
 * Gunzips at most what the IDX header inside declares, and never more than maxBytes. The header is read by
 * inflating only the first KiB of the stream (deflate expands 1 KiB to at most about 1 MiB), then the whole stream
 * is inflated with the declared size as zlib's output limit, so a stream that inflates further fails early.
 */
function gunzipBounded(bytes: Uint8Array, name: string, maxBytes: number): Uint8Array {
  let head: Uint8Array;
  try {
    head = gunzipSync(bytes.subarray(0, 1024), { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: 1 << 21 });
  } catch (error) {
    throw new Error(`${name}: looks gzipped but does not gunzip (${(error as Error).message})`);
  }
  if (head.length >= 2 && (head[0] !== 0 || head[1] !== 0)) {
    const got = Array.from(head.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new Error(`${name}: not an IDX file (magic must start with 00 00, got ${got})`);
  }
  const declared = declaredIdxSize(head);
  if (declared === Infinity && head.length >= 4 + 4 * 255) {
    throw new Error(`${name}: cannot read the IDX header at the start of the gzip stream`);
  }
  const limit = Math.min(declared, maxBytes);
  if (declared !== Infinity && declared > maxBytes) {
    throw new Error(`${name}: its IDX header declares ${declared} bytes, over the ${maxBytes}-byte limit for one IDX file`);
  }
  try {
    return gunzipSync(bytes, { maxOutputLength: Math.max(1, limit) });
  } catch (error) {
    if (error instanceof RangeError || (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      const what = declared === Infinity ? `the ${maxBytes}-byte limit` : `the ${declared} bytes its IDX header declares`;
      throw new Error(`${name}: gunzips to more than ${what}; refused`);
    }
    throw new Error(`${name}: looks gzipped but does not gunzip (${(error as Error).message})`);
  }
}

/** Builds IDX bytes of unsigned-byte data (tests and tools that write datasets use it). */
export function encodeIdx(dims: number[], data: Uint8Array): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (data.length !== count) throw new Error(`encodeIdx: dims ${dims.join('x')} need ${count} values, got ${data.length}`);
  const out = new Uint8Array(4 + 4 * dims.length + count);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}
