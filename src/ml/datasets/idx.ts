// IDX, the file format MNIST ships in: two zero bytes, a data-type byte, a dimension count, one
// big-endian u32 per dimension, then the data in row-major order. Only unsigned bytes (0x08) are
// supported: that is what image and label files use, and it lets the data stay a zero-copy view.

import { gunzipSync } from 'node:zlib';

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

/** Parses an IDX file (gunzipping it first if it starts with the gzip magic). */
export function parseIdx(bytes: Uint8Array, name = 'IDX data'): IdxArray {
  if (isGzip(bytes)) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      throw new Error(`${name}: looks gzipped but does not gunzip (${(error as Error).message})`);
    }
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
