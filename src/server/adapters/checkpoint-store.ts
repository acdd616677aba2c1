// Checkpoints (weights + optimizer state) as blobs keyed by their sha256 (`<sha256>.ckpt`; on the file store,
// `<data>/checkpoints/<sha256>.ckpt`, as before the BlobStore existed), next to a DB row that records the hash.
// Why blobs and not a Bytes column: a 10M-parameter model with Adam is 120 MB, and Prisma round trips of
// multi-MB blobs are slow; a content-addressed blob is also trivially deduplicated and verifiable. This file
// does no I/O of its own: the BlobStore port makes a write durable and atomic (see blob-store.ts).
//
// File layout (little-endian), version 1:
//   0  4 bytes  magic "HGCK"
//   4  u16      format version (1)
//   6  u16      header length in bytes (64): the float arrays start 64-byte aligned
//   8  u32      sessionId
//  12  u32      round
//  16  u32      modelVersion
//  20  u32      paramCount
//  24  u32      slot count (optimizer state arrays)
//  28  u32      reserved (0)
//  32  f64      optimizerStep
//  40  24 bytes reserved (0)
//  64  float32[paramCount] params, then float32[paramCount] per optimizer slot

import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import { basename, resolve } from 'node:path';
import type { BlobReader, BlobStore, CheckpointPayload, CheckpointStore } from '../core/ports';

export const CHECKPOINT_MAGIC = 'HGCK';
export const CHECKPOINT_VERSION = 1;
export const CHECKPOINT_HEADER_BYTES = 64;
// Large enough that syscalls and hash updates are cheap per byte; small enough that the event loop gets a
// turn between chunks of a 120 MB checkpoint.
const CHUNK_BYTES = 8 * 1024 * 1024;
const U32_MAX = 0xffff_ffff;

/** The file at a recorded path is missing, truncated, not a checkpoint, or not the content the hash names. */
export class CheckpointIntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckpointIntegrityError';
  }
}

function u32(what: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) throw new RangeError(`checkpoint ${what} must be a u32, got ${value}`);
  return value;
}

function encodeHeader(payload: CheckpointPayload): Uint8Array {
  const header = new Uint8Array(CHECKPOINT_HEADER_BYTES);
  const view = new DataView(header.buffer);
  header.set(Buffer.from(CHECKPOINT_MAGIC, 'latin1'), 0);
  view.setUint16(4, CHECKPOINT_VERSION, true);
  view.setUint16(6, CHECKPOINT_HEADER_BYTES, true);
  view.setUint32(8, u32('sessionId', payload.sessionId), true);
  view.setUint32(12, u32('round', payload.round), true);
  view.setUint32(16, u32('modelVersion', payload.modelVersion), true);
  view.setUint32(20, u32('paramCount', payload.params.length), true);
  view.setUint32(24, u32('slot count', payload.optimizerState.length), true);
  if (!Number.isFinite(payload.optimizerStep)) throw new RangeError(`checkpoint optimizerStep must be finite, got ${payload.optimizerStep}`);
  view.setFloat64(32, payload.optimizerStep, true);
  return header;
}

/** Byte views over the arrays' own memory, in chunks of at most CHUNK_BYTES. */
function* chunksOf(array: Float32Array): Generator<Uint8Array> {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  for (let at = 0; at < bytes.length; at += CHUNK_BYTES) yield bytes.subarray(at, Math.min(at + CHUNK_BYTES, bytes.length));
}

/** The key a checkpoint with this sha256 (hex) is stored under. */
export function checkpointKey(sha256: string): string {
  return `${sha256}.ckpt`;
}

/**
 * Stores checkpoints in a BlobStore under `<sha256>.ckpt` (runtime.ts gives it the file store on
 * `<data>/checkpoints`). A write streams into a new blob that becomes visible under its hash only once durable
 * (BlobWriter.commit), so a crash never leaves a partial checkpoint under a hash key. `path` in write's result
 * is the store's location of the blob (the file path on the file store).
 */
export function createCheckpointStore(blobs: BlobStore): CheckpointStore {
  // Float32Array has the platform's byte order and we write its memory as is; every platform Node ships on
  // today is little-endian, and refusing here beats writing files other machines would misread.
  if (endianness() !== 'LE') throw new Error('checkpoint files are little-endian; this platform is big-endian');

  /** The key a recorded path names, when it is a location in this store (the path recorded at write time). */
  const keyAt = (path: string): string | null => {
    const name = basename(path);
    try {
      const location = blobs.locate(name);
      return location === path || location === resolve(path) ? name : null;
    } catch {
      return null; // not a valid key: not one of ours
    }
  };

  return {
    async write(payload) {
      const paramCount = payload.params.length;
      payload.optimizerState.forEach((slot, i) => {
        if (slot.length !== paramCount) {
          throw new RangeError(`checkpoint optimizer slot ${i} has ${slot.length} values, params have ${paramCount}`);
        }
      });
      const header = encodeHeader(payload);
      const hash = createHash('sha256');
      // Each chunk is copied into one reusable staging buffer, then hashed and written from there: the hash
      // always describes the bytes stored, even if the caller touches its arrays while the write runs.
      // (Whether the arrays hold one consistent model version is the caller's business: do not step the
      // optimizer on them until write() resolves, or hand over copies.)
      const staging = new Uint8Array(CHUNK_BYTES);
      const writer = await blobs.createWriter();
      try {
        const put = async (source: Uint8Array) => {
          staging.set(source);
          const chunk = staging.subarray(0, source.length);
          hash.update(chunk);
          await writer.write(chunk);
        };
        await put(header);
        for (const array of [payload.params, ...payload.optimizerState]) for (const chunk of chunksOf(array)) await put(chunk);
        const sha256 = hash.digest('hex');
        const key = checkpointKey(sha256);
        // Same key means same bytes, so replacing an existing blob of the same checkpoint is harmless.
        await writer.commit(key);
        return { sha256, path: blobs.locate(key), bytes: writer.size };
      } catch (error) {
        await writer.abort().catch(() => undefined);
        throw error;
      }
    },

    async read(path, sha256) {
      // Content addressing finds the blob even if the recorded path went stale (the data folder moved).
      const byHash = validKey(checkpointKey(sha256));
      let reader: BlobReader | null = null;
      let found = '';
      for (const key of new Set([keyAt(path), byHash])) {
        if (key === null) continue;
        reader = await blobs.openReader(key);
        if (reader) {
          found = blobs.locate(key);
          break;
        }
      }
      if (!reader) {
        throw new CheckpointIntegrityError(`checkpoint ${sha256} not found at ${path}${byHash ? ` or at ${blobs.locate(byHash)}` : ''}`);
      }
      try {
        return await readVerified(reader, found, sha256);
      } finally {
        await reader.close();
      }
    },

    async remove(path, sha256) {
      // By hash, as read finds it; a path recorded elsewhere (a moved data folder) names the same blob.
      let removed = false;
      for (const key of new Set([keyAt(path), validKey(checkpointKey(sha256))])) if (key !== null) removed = (await blobs.delete(key)) || removed;
      return removed;
    },

    async list() {
      const keys = await blobs.list();
      return keys.flatMap((key) => {
        const match = /^([0-9a-f]{64})\.ckpt$/.exec(key);
        return match ? [{ sha256: match[1], path: blobs.locate(key) }] : [];
      });
    },
  };

  /** key, or null when the store refuses it (a recorded hash that is not hex, say). */
  function validKey(key: string): string | null {
    try {
      blobs.locate(key);
      return key;
    } catch {
      return null;
    }
  }
}

async function readVerified(reader: BlobReader, found: string, sha256: string): Promise<CheckpointPayload> {
  const size = await reader.size();
  if (size < CHECKPOINT_HEADER_BYTES) {
    throw new CheckpointIntegrityError(`checkpoint ${found} is ${size} bytes, shorter than its header`);
  }

  // One allocation of the blob's size; the returned arrays are views into it, not copies.
  const buffer = new ArrayBuffer(size);
  const bytes = new Uint8Array(buffer);
  const hash = createHash('sha256');
  let at = 0;
  while (at < size) {
    const bytesRead = await reader.read(bytes.subarray(at, Math.min(size, at + CHUNK_BYTES)), at);
    if (bytesRead === 0) throw new CheckpointIntegrityError(`checkpoint ${found} ended at byte ${at} of ${size}`);
    hash.update(bytes.subarray(at, at + bytesRead));
    at += bytesRead;
  }
  const actual = hash.digest('hex');
  if (actual !== sha256) {
    throw new CheckpointIntegrityError(`checkpoint ${found} has sha256 ${actual}, but ${sha256} was recorded: the file is damaged or was replaced`);
  }

  const view = new DataView(buffer);
  const magic = Buffer.from(bytes.subarray(0, 4)).toString('latin1');
  const version = view.getUint16(4, true);
  const headerBytes = view.getUint16(6, true);
  if (magic !== CHECKPOINT_MAGIC) throw new CheckpointIntegrityError(`${found} is not a checkpoint (magic ${JSON.stringify(magic)})`);
  if (version !== CHECKPOINT_VERSION) {
    throw new CheckpointIntegrityError(`checkpoint ${found} has format version ${version}; this build reads version ${CHECKPOINT_VERSION}`);
  }
  const paramCount = view.getUint32(20, true);
  const slotCount = view.getUint32(24, true);
  const expected = headerBytes + (1 + slotCount) * paramCount * 4;
  if (headerBytes % 4 !== 0 || expected !== size) {
    throw new CheckpointIntegrityError(
      `checkpoint ${found} is ${size} bytes but its header describes ${expected} (${paramCount} params, ${slotCount} slots)`,
    );
  }
  const arrayAt = (index: number) => new Float32Array(buffer, headerBytes + index * paramCount * 4, paramCount);
  return {
    sessionId: view.getUint32(8, true),
    round: view.getUint32(12, true),
    modelVersion: view.getUint32(16, true),
    params: arrayAt(0),
    optimizerState: Array.from({ length: slotCount }, (_, i) => arrayAt(i + 1)),
    optimizerStep: view.getFloat64(32, true),
  };
}
