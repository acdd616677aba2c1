// The file checkpoint store: exact round trip, content addressing, tamper detection, atomic placement.

import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createFileBlobStore } from '../../src/server/adapters/blob-store';
import {
  CHECKPOINT_HEADER_BYTES,
  CheckpointIntegrityError,
  createCheckpointStore,
} from '../../src/server/adapters/checkpoint-store';
import type { CheckpointPayload } from '../../src/server/core/ports';

const root = mkdtempSync(join(tmpdir(), 'hypergpu-ckpt-'));
let dirs = 0;
const freshDir = () => join(root, `store-${++dirs}`, 'checkpoints');

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The production wiring (runtime.ts): the checkpoint store on a file blob store. */
const createFileCheckpointStore = (dir: string) => createCheckpointStore(createFileBlobStore(dir));

/** Deterministic values, including the awkward ones a float file must keep bit for bit. */
function payloadOf(paramCount: number, slots: number, seed = 1): CheckpointPayload {
  const fill = (offset: number) => {
    const a = new Float32Array(paramCount);
    for (let i = 0; i < paramCount; i++) a[i] = Math.sin((i + 1) * (seed + offset)) * 10 ** ((i % 7) - 3);
    if (paramCount > 4) {
      a[0] = -0;
      a[1] = Number.POSITIVE_INFINITY;
      a[2] = 1.401298464324817e-45; // smallest subnormal
      a[3] = Number.NaN;
    }
    return a;
  };
  return {
    sessionId: 7,
    round: 120,
    modelVersion: 118,
    params: fill(0),
    optimizerState: Array.from({ length: slots }, (_, i) => fill(i + 1)),
    optimizerStep: 118,
  };
}

const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

describe('file checkpoint store', () => {
  it('round-trips weights and optimizer state bit for bit', async () => {
    const store = createFileCheckpointStore(freshDir());
    const payload = payloadOf(10_007, 2);
    const written = await store.write(payload);
    const read = await store.read(written.path, written.sha256);

    expect({ ...read, params: null, optimizerState: null }).toEqual({ ...payload, params: null, optimizerState: null });
    expect(bitsOf(read.params)).toEqual(bitsOf(payload.params));
    expect(read.optimizerState).toHaveLength(2);
    read.optimizerState.forEach((slot, i) => expect(bitsOf(slot)).toEqual(bitsOf(payload.optimizerState[i])));
  });

  it('removes a checkpoint by its hash (retention), and only that one', async () => {
    const dir = freshDir();
    const store = createFileCheckpointStore(dir);
    const old = await store.write(payloadOf(64, 1, 1));
    const kept = await store.write(payloadOf(64, 1, 2));
    expect(await store.remove(old.path, old.sha256)).toBe(true);
    expect(await store.remove(old.path, old.sha256)).toBe(false);
    expect(readdirSync(dir)).toEqual([basename(kept.path)]);
    await expect(store.read(old.path, old.sha256)).rejects.toBeInstanceOf(CheckpointIntegrityError);
    expect(bitsOf((await store.read(kept.path, kept.sha256)).params)).toEqual(bitsOf(payloadOf(64, 1, 2).params));
    writeFileSync(join(dir, 'not-a-checkpoint.txt'), 'x');
    expect(await store.list()).toEqual([{ sha256: kept.sha256, path: kept.path }]);
  });

  it('handles no optimizer slots (plain SGD) and an empty model', async () => {
    const store = createFileCheckpointStore(freshDir());
    for (const payload of [payloadOf(33, 0), payloadOf(0, 2)]) {
      const written = await store.write(payload);
      const read = await store.read(written.path, written.sha256);
      expect(bitsOf(read.params)).toEqual(bitsOf(payload.params));
      expect(read.optimizerState.map((s) => s.length)).toEqual(payload.optimizerState.map((s) => s.length));
      expect(written.bytes).toBe(CHECKPOINT_HEADER_BYTES + (1 + payload.optimizerState.length) * payload.params.length * 4);
    }
  });

  it('names the file by the sha256 of its bytes and reports its size', async () => {
    const dir = freshDir();
    const store = createFileCheckpointStore(dir);
    const written = await store.write(payloadOf(1000, 1));
    const bytes = readFileSync(written.path);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(written.sha256);
    expect(basename(written.path)).toBe(`${written.sha256}.ckpt`);
    expect(written.bytes).toBe(bytes.length);
    expect(statSync(written.path).size).toBe(CHECKPOINT_HEADER_BYTES + 2 * 1000 * 4);
    // No temporary file is left behind.
    expect(readdirSync(dir)).toEqual([`${written.sha256}.ckpt`]);
  });

  it('writes identical payloads to the same file, and different ones to different files', async () => {
    const store = createFileCheckpointStore(freshDir());
    const a = await store.write(payloadOf(500, 1, 1));
    const again = await store.write(payloadOf(500, 1, 1));
    const b = await store.write(payloadOf(500, 1, 2));
    expect(again).toEqual(a);
    expect(b.sha256).not.toBe(a.sha256);
  });

  it('detects a changed byte, a truncated file, a wrong hash and a missing file', async () => {
    const store = createFileCheckpointStore(freshDir());
    const written = await store.write(payloadOf(2000, 2));
    const original = readFileSync(written.path);

    const flipped = Buffer.from(original);
    flipped[CHECKPOINT_HEADER_BYTES + 4321] ^= 0x01;
    writeFileSync(written.path, flipped);
    await expect(store.read(written.path, written.sha256)).rejects.toThrow(CheckpointIntegrityError);
    await expect(store.read(written.path, written.sha256)).rejects.toThrow(/sha256 .* but .* was recorded/);

    writeFileSync(written.path, original.subarray(0, original.length - 8));
    await expect(store.read(written.path, written.sha256)).rejects.toThrow(CheckpointIntegrityError);

    writeFileSync(written.path, original);
    await expect(store.read(written.path, 'a'.repeat(64))).rejects.toThrow(CheckpointIntegrityError);
    await store.read(written.path, written.sha256);

    rmSync(written.path);
    await expect(store.read(written.path, written.sha256)).rejects.toThrow(/not found/);
  });

  it('refuses a file whose hash matches but whose header does not describe its size', async () => {
    const dir = freshDir();
    const store = createFileCheckpointStore(dir);
    const written = await store.write(payloadOf(100, 1));
    const bogus = Buffer.from(readFileSync(written.path));
    bogus.writeUInt32LE(99, 20); // paramCount
    const path = join(dir, 'bogus.ckpt');
    writeFileSync(path, bogus);
    const sha = createHash('sha256').update(bogus).digest('hex');
    await expect(store.read(path, sha)).rejects.toThrow(/header describes/);
  });

  it('finds a checkpoint by its hash when the recorded path went stale', async () => {
    const oldDir = freshDir();
    const written = await createFileCheckpointStore(oldDir).write(payloadOf(64, 1));
    const newDir = freshDir();
    const moved = createFileCheckpointStore(newDir);
    await moved.write(payloadOf(1, 0)); // creates the folder
    renameSync(written.path, join(newDir, `${written.sha256}.ckpt`));
    const read = await moved.read(written.path, written.sha256);
    expect(read.params.length).toBe(64);
  });

  it('refuses optimizer slots whose length differs from the params', async () => {
    const store = createFileCheckpointStore(freshDir());
    const payload = payloadOf(10, 1);
    payload.optimizerState.push(new Float32Array(9));
    await expect(store.write(payload)).rejects.toThrow(/slot 1 has 9 values/);
  });

  it('writes and reads a 10M-parameter Adam checkpoint (120 MB) and reports the time', async () => {
    const store = createFileCheckpointStore(freshDir());
    const n = 10_000_000;
    const payload: CheckpointPayload = {
      sessionId: 1,
      round: 1,
      modelVersion: 1,
      params: new Float32Array(n).fill(0.5),
      optimizerState: [new Float32Array(n).fill(0.25), new Float32Array(n).fill(0.125)],
      optimizerStep: 1,
    };
    const t0 = performance.now();
    const written = await store.write(payload);
    const t1 = performance.now();
    const read = await store.read(written.path, written.sha256);
    const t2 = performance.now();
    console.log(`checkpoint 10M params + 2 slots (${(written.bytes / 1e6).toFixed(0)} MB): write ${(t1 - t0).toFixed(0)} ms, read+verify ${(t2 - t1).toFixed(0)} ms`);
    expect(read.optimizerState[1][n - 1]).toBe(0.125);
    expect(read.params[n - 1]).toBe(0.5);
  });
});
