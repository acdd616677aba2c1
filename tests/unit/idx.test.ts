import { gzipSync } from 'node:zlib';

import { describe, expect, it } from 'vitest';

import { encodeIdx, parseIdx } from '../../src/ml/datasets/idx';

/** IDX bytes written out field by field, independent of encodeIdx. */
function idxBytes(type: number, dims: number[], data: number[]): Uint8Array {
  const header = [0, 0, type, dims.length];
  for (const d of dims) header.push((d >>> 24) & 0xff, (d >>> 16) & 0xff, (d >>> 8) & 0xff, d & 0xff);
  return Uint8Array.from([...header, ...data]);
}

describe('parseIdx', () => {
  it('reads a 1-D label file', () => {
    const parsed = parseIdx(idxBytes(0x08, [5], [3, 1, 4, 1, 5]));
    expect(parsed.dims).toEqual([5]);
    expect(Array.from(parsed.data)).toEqual([3, 1, 4, 1, 5]);
  });

  it('reads a 3-D image file with big-endian dims', () => {
    const data = Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 10);
    const parsed = parseIdx(idxBytes(0x08, [2, 3, 4], data));
    expect(parsed.dims).toEqual([2, 3, 4]);
    expect(Array.from(parsed.data)).toEqual(data);
  });

  it('reads dims above 255 (big-endian, multi-byte)', () => {
    const parsed = parseIdx(idxBytes(0x08, [1, 300], new Array(300).fill(7)));
    expect(parsed.dims).toEqual([1, 300]);
    expect(parsed.data.length).toBe(300);
  });

  it('gunzips gzipped input', () => {
    const raw = idxBytes(0x08, [2, 2], [1, 2, 3, 4]);
    const parsed = parseIdx(gzipSync(raw));
    expect(parsed.dims).toEqual([2, 2]);
    expect(Array.from(parsed.data)).toEqual([1, 2, 3, 4]);
  });

  it('returns a view, not a copy', () => {
    const bytes = idxBytes(0x08, [3], [9, 8, 7]);
    const parsed = parseIdx(bytes);
    expect(parsed.data.buffer).toBe(bytes.buffer);
  });

  it('round-trips encodeIdx', () => {
    const data = Uint8Array.from({ length: 24 }, (_, i) => (i * 37) % 256);
    expect(encodeIdx([2, 3, 4], data)).toEqual(idxBytes(0x08, [2, 3, 4], Array.from(data)));
    const parsed = parseIdx(encodeIdx([2, 3, 4], data));
    expect(parsed.dims).toEqual([2, 3, 4]);
    expect(Array.from(parsed.data)).toEqual(Array.from(data));
  });

  it('rejects a bad magic number', () => {
    const bytes = idxBytes(0x08, [1], [1]);
    bytes[0] = 0x42;
    expect(() => parseIdx(bytes, 'x.idx')).toThrow(/x\.idx: not an IDX file.*42 00 08 01/);
  });

  it('rejects unsupported data types, naming them', () => {
    expect(() => parseIdx(idxBytes(0x0d, [1], [0, 0, 0, 0]))).toThrow(/unsupported IDX data type 0x0d \(float32\)/);
    expect(() => parseIdx(idxBytes(0x0c, [1], [0, 0, 0, 0]))).toThrow(/0x0c \(int32\)/);
    expect(() => parseIdx(idxBytes(0x42, [1], [0]))).toThrow(/0x42 \(unknown\)/);
  });

  it('rejects a truncated header', () => {
    expect(() => parseIdx(new Uint8Array([0, 0]))).toThrow(/truncated IDX header/);
    expect(() => parseIdx(idxBytes(0x08, [2, 3], []).subarray(0, 9))).toThrow(/truncated IDX header.*2 dimensions need 12/);
  });

  it('rejects truncated data, saying how much is missing', () => {
    expect(() => parseIdx(idxBytes(0x08, [2, 3], [1, 2, 3, 4, 5]))).toThrow(/truncated IDX data \(dims 2x3 need 6 bytes, file has 5\)/);
  });

  it('rejects trailing bytes', () => {
    expect(() => parseIdx(idxBytes(0x08, [2], [1, 2, 3]))).toThrow(/1 unexpected bytes after the IDX data/);
  });

  it('rejects zero dimensions and corrupt gzip', () => {
    expect(() => parseIdx(new Uint8Array([0, 0, 8, 0]))).toThrow(/0 dimensions/);
    expect(() => parseIdx(new Uint8Array([0x1f, 0x8b, 1, 2, 3]))).toThrow(/looks gzipped but does not gunzip/);
  });

  it('encodeIdx checks the value count', () => {
    expect(() => encodeIdx([2, 2], new Uint8Array(3))).toThrow(/need 4 values, got 3/);
  });
});

describe('parseIdx on gzip: bounded by the header and by a cap', () => {
  it('gunzips a well-formed file', () => {
    const raw = idxBytes(0x08, [2, 3], [1, 2, 3, 4, 5, 6]);
    expect(Array.from(parseIdx(gzipSync(raw)).data)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses a stream that inflates past the size its IDX header declares (a gzip bomb behind a small header)', () => {
    // Header says 4 bytes of data; the stream carries 64 MiB of zeros after it (about 64 KiB compressed).
    const header = idxBytes(0x08, [4], [0, 0, 0, 0]);
    const bomb = gzipSync(Buffer.concat([Buffer.from(header), Buffer.alloc(64 << 20)]));
    expect(bomb.length).toBeLessThan(1 << 20);
    expect(() => parseIdx(bomb, 'bomb.gz')).toThrow(/bomb\.gz: gunzips to more than the 12 bytes its IDX header declares; refused/);
  });

  it('refuses a header that declares more than the cap, before inflating the rest', () => {
    // dims 65536 x 65536 = 4 GiB declared
    const head = idxBytes(0x08, [65536, 65536], []);
    const gz = gzipSync(Buffer.concat([Buffer.from(head), Buffer.alloc(1024)]));
    expect(() => parseIdx(gz, 'huge.gz')).toThrow(/huge\.gz: its IDX header declares \d+ bytes, over the \d+-byte limit/);
    const small = gzipSync(Buffer.from(idxBytes(0x08, [100], new Array(100).fill(1))));
    expect(() => parseIdx(small, 'capped.gz', { maxBytes: 50 })).toThrow(/declares 108 bytes, over the 50-byte limit/);
  });

  it('refuses an uncompressed file over the cap', () => {
    expect(() => parseIdx(idxBytes(0x08, [100], new Array(100).fill(1)), 'raw', { maxBytes: 50 })).toThrow(/raw: 108 bytes, over the 50-byte limit/);
  });
});
