// Checkpoints (weights + optimizer state) in files named by their sha256, next to a DB row that records the
// hash. Why files and not a Bytes column: a 10M-parameter model with Adam is 120 MB, and Prisma round trips
// of multi-MB blobs are slow; a content-addressed file is also trivially deduplicated and verifiable.
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

import { createHash, randomBytes } from 'node:crypto';
import { endianness } from 'node:os';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { CheckpointPayload, CheckpointStore } from '../core/ports';

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

async function fsyncDirectory(dir: string): Promise<void> {
  // Makes the rename itself durable. Linux allows fsync on a directory opened read-only; some platforms do
  // not, and there the rename is as durable as the platform makes it.
  try {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    /* best effort */
  }
}

/**
 * Stores checkpoints as `<dir>/<sha256>.ckpt`. A write goes to a temporary file in the same folder, is
 * fsync'd, then renamed into place, so a crash never leaves a partial file under a hash name.
 */
export function createFileCheckpointStore(dir: string): CheckpointStore {
  const root = resolve(dir);
  // Float32Array has the platform's byte order and we write its memory as is; every platform Node ships on
  // today is little-endian, and refusing here beats writing files other machines would misread.
  if (endianness() !== 'LE') throw new Error('checkpoint files are little-endian; this platform is big-endian');

  return {
    async write(payload) {
      const paramCount = payload.params.length;
      payload.optimizerState.forEach((slot, i) => {
        if (slot.length !== paramCount) {
          throw new RangeError(`checkpoint optimizer slot ${i} has ${slot.length} values, params have ${paramCount}`);
        }
      });
      const header = encodeHeader(payload);
      await mkdir(root, { recursive: true });
      const temp = join(root, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}.ckpt`);
      const hash = createHash('sha256');
      let bytes = 0;
      // Each chunk is copied into one reusable staging buffer, then hashed and written from there: the hash
      // always describes the bytes in the file, even if the caller touches its arrays while the write runs.
      // (Whether the arrays hold one consistent model version is the caller's business: do not step the
      // optimizer on them until write() resolves, or hand over copies.)
      const staging = new Uint8Array(CHUNK_BYTES);
      const handle = await open(temp, 'wx');
      try {
        const put = async (source: Uint8Array) => {
          staging.set(source);
          const chunk = staging.subarray(0, source.length);
          hash.update(chunk);
          let written = 0;
          while (written < chunk.length) {
            const { bytesWritten } = await handle.write(chunk, written, chunk.length - written);
            written += bytesWritten;
          }
          bytes += chunk.length;
        };
        await put(header);
        for (const array of [payload.params, ...payload.optimizerState]) for (const chunk of chunksOf(array)) await put(chunk);
        await handle.sync();
      } catch (error) {
        await handle.close().catch(() => undefined);
        await rm(temp, { force: true });
        throw error;
      }
      await handle.close();
      const sha256 = hash.digest('hex');
      const path = join(root, `${sha256}.ckpt`);
      try {
        // Same name means same bytes, so replacing an existing file of the same checkpoint is harmless.
        await rename(temp, path);
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
      await fsyncDirectory(root);
      return { sha256, path, bytes };
    },

    async read(path, sha256) {
      // Content addressing lets us find the file even if the recorded path went stale (data folder moved).
      const candidates = [path, join(root, `${sha256}.ckpt`)];
      let found: string | null = null;
      let size = 0;
      for (const candidate of candidates) {
        const info = await stat(candidate).catch(() => null);
        if (info?.isFile()) {
          found = candidate;
          size = info.size;
          break;
        }
      }
      if (!found) throw new CheckpointIntegrityError(`checkpoint ${sha256} not found at ${path} or in ${root}`);
      if (size < CHECKPOINT_HEADER_BYTES) {
        throw new CheckpointIntegrityError(`checkpoint ${found} is ${size} bytes, shorter than its header`);
      }

      // One allocation of the file's size; the returned arrays are views into it, not copies.
      const buffer = new ArrayBuffer(size);
      const bytes = new Uint8Array(buffer);
      const hash = createHash('sha256');
      const handle = await open(found, 'r');
      try {
        let at = 0;
        while (at < size) {
          const { bytesRead } = await handle.read(bytes, at, Math.min(CHUNK_BYTES, size - at), at);
          if (bytesRead === 0) throw new CheckpointIntegrityError(`checkpoint ${found} ended at byte ${at} of ${size}`);
          hash.update(bytes.subarray(at, at + bytesRead));
          at += bytesRead;
        }
      } finally {
        await handle.close();
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
    },
  };
}
