// Behaviour every BlobStore must show, run against the in-memory fake (tests/unit/fake-blob-store.test.ts) and the
// file store (tests/integration/blob-store.test.ts). The checkpoint store and the update journal rely on exactly
// this; when the two disagree, fix whichever side is wrong here rather than in one adapter's own test.

import { describe, expect, it } from 'vitest';
import type { BlobStore } from '../../src/server/core/ports';

const bytesOf = (...values: number[]) => Uint8Array.from(values);
const text = (s: string) => new TextEncoder().encode(s);
/** Deterministic bytes that are not a repeating pattern, so a misplaced range shows. */
function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Byte equality; toEqual walks large typed arrays element by element (seconds per 100 KB), this does not. */
function expectBytes(actual: Uint8Array | null, expected: Uint8Array): void {
  expect(actual).toBeInstanceOf(Uint8Array);
  if (actual!.length !== expected.length || !Buffer.from(actual!.buffer, actual!.byteOffset, actual!.length).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.length))) {
    expect(Array.from(actual!.subarray(0, 64))).toEqual(Array.from(expected.subarray(0, 64))); // a readable diff
    expect({ length: actual!.length, equal: false }).toEqual({ length: expected.length, equal: true });
  }
}

const BAD_KEYS = ['', '.hidden', '..', 'a/b', '../escape', 'a\\b', 'with space', 'ü', 'x'.repeat(201), 'nul\0'];

export function describeBlobStoreConformance(name: string, makeStore: () => BlobStore | Promise<BlobStore>): void {
  describe(`BlobStore conformance: ${name}`, () => {
    it('holds nothing at first', async () => {
      const store = await makeStore();
      expect(await store.get('missing')).toBeNull();
      expect(await store.openReader('missing')).toBeNull();
      expect(await store.list()).toEqual([]);
      expect(await store.delete('missing')).toBe(false);
    });

    it('put then get round-trips the bytes exactly, and both sides are copies', async () => {
      const store = await makeStore();
      const data = pattern(10_000);
      await store.put('a.bin', data);
      const original = data.slice();
      data.fill(0); // the caller may reuse its array once put resolves
      const got = await store.get('a.bin');
      expectBytes(got, original);
      got!.fill(7);
      expectBytes(await store.get('a.bin'), original);
    });

    it('stores empty blobs, and blobs given as views into a larger buffer', async () => {
      const store = await makeStore();
      await store.put('empty', new Uint8Array(0));
      expect(await store.get('empty')).toEqual(new Uint8Array(0));
      const backing = pattern(100);
      await store.put('view', backing.subarray(10, 20));
      expect(await store.get('view')).toEqual(backing.slice(10, 20));
    });

    it('put replaces what a key held', async () => {
      const store = await makeStore();
      await store.put('k', pattern(1000, 1));
      expectBytes(await store.get('k'), pattern(1000, 1));
      await store.put('k', bytesOf(1, 2, 3));
      expect(await store.get('k')).toEqual(bytesOf(1, 2, 3));
      expect(await store.list()).toEqual(['k']);
    });

    it('lists keys by prefix, sorted, and deletes them', async () => {
      const store = await makeStore();
      for (const key of ['session-2.journal', 'b.ckpt', 'session-10.journal', 'a.ckpt', 'session-1.journal']) await store.put(key, text(key));
      expect(await store.list()).toEqual(['a.ckpt', 'b.ckpt', 'session-1.journal', 'session-10.journal', 'session-2.journal']);
      expect(await store.list('session-1')).toEqual(['session-1.journal', 'session-10.journal']);
      expect(await store.list('nothing')).toEqual([]);
      expect(await store.delete('b.ckpt')).toBe(true);
      expect(await store.delete('b.ckpt')).toBe(false);
      expect(await store.get('b.ckpt')).toBeNull();
      expect(await store.list('')).toEqual(['a.ckpt', 'session-1.journal', 'session-10.journal', 'session-2.journal']);
    });

    it('refuses keys outside the key alphabet everywhere, and locates valid ones distinctly', async () => {
      const store = await makeStore();
      for (const key of BAD_KEYS) {
        expect(() => store.locate(key), JSON.stringify(key)).toThrow(RangeError);
        await expect(store.put(key, bytesOf(1)), JSON.stringify(key)).rejects.toThrow(RangeError);
        await expect(store.get(key)).rejects.toThrow(RangeError);
        await expect(store.openReader(key)).rejects.toThrow(RangeError);
        await expect(store.openUpdater(key)).rejects.toThrow(RangeError);
        await expect(store.delete(key)).rejects.toThrow(RangeError);
        const writer = await store.createWriter();
        await expect(writer.commit(key)).rejects.toThrow(RangeError);
        await writer.abort();
      }
      const keys = ['a', 'A', '0', '_x', '-y', 'a.b.c', 'x'.repeat(200), `${'f'.repeat(64)}.ckpt`];
      const locations = keys.map((key) => store.locate(key));
      expect(new Set(locations).size).toBe(keys.length);
      expect(store.locate('a')).toBe(locations[0]);
      for (const key of keys) await store.put(key, text(key));
      expect(await store.list()).toEqual([...keys].sort());
    });

    describe('writers', () => {
      it('make nothing visible until commit, then the whole blob at once', async () => {
        const store = await makeStore();
        const writer = await store.createWriter();
        const chunks = [pattern(3000, 1), pattern(1, 2), new Uint8Array(0), pattern(70_000, 3)];
        for (const chunk of chunks) await writer.write(chunk);
        expect(writer.size).toBe(73_001);
        expect(await store.list()).toEqual([]);
        await writer.commit('big');
        const expected = new Uint8Array(73_001);
        let at = 0;
        for (const chunk of chunks) {
          expected.set(chunk, at);
          at += chunk.length;
        }
        expectBytes(await store.get('big'), expected);
      });

      it('copy each chunk before write resolves: a reused staging buffer is safe', async () => {
        const store = await makeStore();
        const writer = await store.createWriter();
        const staging = new Uint8Array(4);
        for (let i = 0; i < 5; i++) {
          staging.fill(i);
          await writer.write(staging);
        }
        await writer.commit('staged');
        expect(await store.get('staged')).toEqual(Uint8Array.from({ length: 20 }, (_, i) => Math.floor(i / 4)));
      });

      it('land writes fired without awaiting in call order', async () => {
        const store = await makeStore();
        const writer = await store.createWriter();
        await Promise.all([bytesOf(1, 2), bytesOf(3), bytesOf(4, 5, 6)].map((chunk) => writer.write(chunk)));
        await writer.commit('ordered');
        expect(await store.get('ordered')).toEqual(bytesOf(1, 2, 3, 4, 5, 6));
      });

      it('replace a key atomically: readers see the old blob until commit resolves', async () => {
        const store = await makeStore();
        await store.put('model', text('old'));
        const writer = await store.createWriter();
        await writer.write(text('new and longer'));
        expect(await store.get('model')).toEqual(text('old'));
        await writer.commit('model');
        expect(await store.get('model')).toEqual(text('new and longer'));
      });

      it('abort leaves nothing, is idempotent, and a finished writer refuses more work', async () => {
        const store = await makeStore();
        const dropped = await store.createWriter();
        await dropped.write(pattern(100));
        await dropped.abort();
        await dropped.abort();
        await expect(dropped.write(bytesOf(1))).rejects.toThrow(/after commit or abort/);
        await expect(dropped.commit('x')).rejects.toThrow(/after commit or abort/);
        expect(await store.list()).toEqual([]);

        const done = await store.createWriter();
        await done.commit('empty');
        await expect(done.write(bytesOf(1))).rejects.toThrow(/after commit or abort/);
        await expect(done.commit('again')).rejects.toThrow(/after commit or abort/);
        await done.abort(); // harmless after commit
        expect(await store.get('empty')).toEqual(new Uint8Array(0));
        expect(await store.list()).toEqual(['empty']);
      });

      it('run side by side without mixing', async () => {
        const store = await makeStore();
        const [a, b] = await Promise.all([store.createWriter(), store.createWriter()]);
        await Promise.all([a.write(text('a1')), b.write(text('b1'))]);
        await Promise.all([a.write(text('a2')), b.write(text('b2'))]);
        await Promise.all([a.commit('a'), b.commit('b')]);
        expect(await store.get('a')).toEqual(text('a1a2'));
        expect(await store.get('b')).toEqual(text('b1b2'));
      });
    });

    describe('readers', () => {
      it('read ranges at any position; short at the end, 0 past it', async () => {
        const store = await makeStore();
        const data = pattern(5000);
        await store.put('r', data);
        const reader = (await store.openReader('r'))!;
        try {
          expect(await reader.size()).toBe(5000);
          const into = new Uint8Array(100);
          expect(await reader.read(into, 1234)).toBe(100);
          expect(into).toEqual(data.slice(1234, 1334));
          expect(await reader.read(into, 4950)).toBe(50);
          expect(into.subarray(0, 50)).toEqual(data.slice(4950));
          expect(await reader.read(into, 5000)).toBe(0);
          expect(await reader.read(into, 9999)).toBe(0);
          expect(await reader.read(new Uint8Array(0), 0)).toBe(0);
          // Into a view: only the view's bytes change.
          const backing = new Uint8Array(10).fill(9);
          expect(await reader.read(backing.subarray(2, 5), 0)).toBe(3);
          expect(backing).toEqual(Uint8Array.from([9, 9, data[0], data[1], data[2], 9, 9, 9, 9, 9]));
        } finally {
          await reader.close();
        }
      });

      it('keep the blob they opened when the key is replaced or deleted', async () => {
        const store = await makeStore();
        await store.put('k', text('first'));
        const reader = (await store.openReader('k'))!;
        await store.put('k', text('second, longer'));
        const into = new Uint8Array(5);
        expect(await reader.read(into, 0)).toBe(5);
        expect(into).toEqual(text('first'));
        await store.delete('k');
        expect(await reader.size()).toBe(5);
        await reader.close();
        expect(await store.get('k')).toBeNull();
      });
    });

    describe('updaters', () => {
      it('create the blob when it is missing and say so; open an existing one as is', async () => {
        const store = await makeStore();
        const first = await store.openUpdater('log');
        expect(first.created).toBe(true);
        expect(await first.size()).toBe(0);
        await first.write(text('abc'), 0);
        await first.sync();
        await first.close();
        expect(await store.list()).toEqual(['log']);
        const again = await store.openUpdater('log');
        expect(again.created).toBe(false);
        expect(await again.size()).toBe(3);
        await again.close();
        expect(await store.get('log')).toEqual(text('abc'));
      });

      it('write at positions (overwriting, extending, leaving zeros in a gap), truncate, and read back', async () => {
        const store = await makeStore();
        const u = await store.openUpdater('journal');
        try {
          await u.write(bytesOf(1, 2, 3, 4), 0);
          await u.write(bytesOf(9, 9), 1); // overwrite in place
          await u.write(bytesOf(7), 6); // past the end: bytes 4-5 read as zeros
          expect(await u.size()).toBe(7);
          const all = new Uint8Array(7);
          expect(await u.read(all, 0)).toBe(7);
          expect(all).toEqual(bytesOf(1, 9, 9, 4, 0, 0, 7));
          await u.truncate(3);
          expect(await u.size()).toBe(3);
          await u.write(bytesOf(5), 3); // append after a truncate
          await u.sync();
          expect(await store.get('journal')).toEqual(bytesOf(1, 9, 9, 5));
          await u.write(pattern(100_000), 4); // a large write lands whole
          await u.sync();
        } finally {
          await u.close();
        }
        const got = (await store.get('journal'))!;
        expect(got.length).toBe(100_004);
        expectBytes(got.subarray(4), pattern(100_000));
      });

      it('see a put or commit that replaced the key only when opened afterwards', async () => {
        const store = await makeStore();
        const u = await store.openUpdater('j');
        await u.write(text('old'), 0);
        await u.sync();
        await store.put('j', text('replaced'));
        await u.write(text('OLD'), 0); // goes to the blob it opened, not the new one
        await u.sync();
        await u.close();
        expect(await store.get('j')).toEqual(text('replaced'));
      });
    });
  });
}
