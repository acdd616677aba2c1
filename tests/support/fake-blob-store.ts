// In-memory BlobStore for tests, and a wrapper that injects failures into any BlobStore.
//
// The fake follows the same rules as the file store (src/server/adapters/blob-store.ts); the shared conformance
// suite (tests/support/blob-store-conformance.ts) runs against both. Beyond the port it models durability the way
// the file store promises it, so code on top can be tested against power loss:
// - put, a writer's commit and delete are durable when they resolve;
// - an updater's writes and truncates are durable once its sync() resolves, and so is the key of a blob that
//   opening the updater created;
// - crash() is a power cut: by default every blob goes back to what was last made durable and unsynced blobs
//   vanish; crash('keep-all') keeps every write; crash('subset', seed) keeps a random subset of the writes and
//   truncates since each blob's last sync, applied in order, and of the unsynced keys (a disk that reorders:
//   a later write may survive an earlier truncate that did not). Handles and writers opened before it fail from
//   then on, as a dead process's would.
// - powerCutAfter(n) cuts power just before the (n+1)th operation that changes something, which then rejects.
//
// An open reader or updater keeps the blob it opened (as a file descriptor keeps its inode) even when the key is
// replaced or deleted.

import { checkBlobKey } from '../../src/server/adapters/blob-store';
import type { BlobReader, BlobStore, BlobUpdater, BlobWriter } from '../../src/server/core/ports';
import { rng } from './random';

export type CrashMode = 'lose-unsynced' | 'keep-all' | 'subset';

export interface FakeBlobStore extends BlobStore {
  /** Power loss (see the file comment); seed picks the subset for 'subset'. */
  crash(mode?: CrashMode, seed?: number): void;
  /** Cuts power just before the (n+1)th mutating operation from now; that operation rejects. */
  powerCutAfter(operations: number, mode?: CrashMode, seed?: number): void;
  /** How many power cuts have happened. */
  readonly crashes: number;
  /** Calls per operation name (store methods, and handle methods as 'writer.write', 'updater.sync', ...). */
  readonly calls: Record<string, number>;
  /** Writers created and neither committed nor aborted (a leak check). */
  openWriters(): number;
}

type Change = { kind: 'write'; bytes: Uint8Array; position: number } | { kind: 'truncate'; length: number };

/** One blob's bytes, shared by every handle that opened it (an inode). */
class Blob {
  private buffer = new Uint8Array(0);
  length = 0;
  /** What survives a power cut: a copy taken at the last sync or commit. */
  durable = new Uint8Array(0);
  /** Updater writes and truncates since the last persist (what a 'subset' crash picks from). */
  private changes: Change[] = [];

  /** An updater's write or truncate: applied now, remembered until the next persist. */
  change(change: Change): void {
    if (change.kind === 'write') {
      const bytes = change.bytes.slice();
      this.changes.push({ kind: 'write', bytes, position: change.position });
      this.writeAt(bytes, change.position);
    } else {
      this.changes.push(change);
      this.truncate(change.length);
    }
  }

  bytes(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }

  writeAt(bytes: Uint8Array, position: number): void {
    const end = position + bytes.length;
    if (end > this.buffer.length) {
      const grown = new Uint8Array(Math.max(end, this.buffer.length * 2, 64));
      grown.set(this.bytes());
      this.buffer = grown;
    }
    // Bytes between the old end and position read as zeros, as a file's hole does.
    if (position > this.length) this.buffer.fill(0, this.length, position);
    this.buffer.set(bytes, position);
    this.length = Math.max(this.length, end);
  }

  truncate(length: number): void {
    if (length > this.length) this.writeAt(new Uint8Array(0), length);
    this.length = length;
  }

  persist(): void {
    this.durable = this.bytes().slice();
    this.changes = [];
  }

  /** Back to the durable bytes, then (for 'subset') the changes that `keep` picks, in order; durable from then on. */
  restore(keep: () => boolean = () => false): void {
    const changes = this.changes;
    this.buffer = this.durable.slice();
    this.length = this.buffer.length;
    for (const change of changes) {
      if (!keep()) continue;
      if (change.kind === 'write') this.writeAt(change.bytes, change.position);
      else this.truncate(change.length);
    }
    this.persist();
  }
}

/** A seeded coin (mulberry32), so a failing subset can be replayed. */
function seededCoin(seed: number): () => boolean {
  const next = rng(seed);
  return () => next() < 0.5;
}

const MUTATING = new Set(['put', 'writer.write', 'writer.commit', 'updater.write', 'updater.truncate', 'updater.sync', 'delete', 'openUpdater']);

export function createFakeBlobStore(): FakeBlobStore {
  let names = new Map<string, Blob>();
  /** Keys whose binding survives a power cut. */
  let durableNames = new Map<string, Blob>();
  const calls: Record<string, number> = {};
  let epoch = 0;
  let crashes = 0;
  let writers = 0;
  let cut: { remaining: number; mode: CrashMode; seed: number } | null = null;

  function crash(mode: CrashMode = 'lose-unsynced', seed = 1): void {
    epoch++;
    crashes++;
    cut = null;
    if (mode === 'keep-all') {
      for (const blob of names.values()) blob.persist();
      durableNames = new Map(names);
      return;
    }
    const keep = mode === 'subset' ? seededCoin(seed) : () => false;
    // Keys whose binding was not made durable survive (or not) as a disk that reorders allows; the rest are
    // exactly the durable bindings (put, commit and delete resolve durably, so they are never in doubt).
    const survivors = new Map(durableNames);
    for (const [key, blob] of names) if (!survivors.has(key) && keep()) survivors.set(key, blob);
    names = survivors;
    durableNames = new Map(survivors);
    for (const blob of names.values()) blob.restore(keep);
  }

  /** Counts a call; runs a scheduled power cut; refuses handles from before the last cut. */
  async function enter(operation: string, since = epoch): Promise<void> {
    calls[operation] = (calls[operation] ?? 0) + 1;
    // A real store never answers synchronously; neither does this one, so interleavings look alike.
    await Promise.resolve();
    if (since !== epoch) throw new Error(`${operation}: the handle was opened before a power cut (fake crash)`);
    if (cut && MUTATING.has(operation)) {
      if (cut.remaining === 0) {
        crash(cut.mode, cut.seed);
        throw new Error(`${operation}: power cut (fake crash)`);
      }
      cut.remaining--;
    }
  }

  function reader(blob: Blob, since: number, kind: string): BlobReader & { closed: boolean } {
    return {
      closed: false,
      async size() {
        await enter(`${kind}.size`, since);
        return blob.length;
      },
      async read(into, position) {
        await enter(`${kind}.read`, since);
        if (this.closed) throw new Error('read after close');
        const available = blob.bytes().subarray(Math.min(position, blob.length), Math.min(blob.length, position + into.length));
        into.set(available);
        return available.length;
      },
      async close() {
        this.closed = true;
      },
    };
  }

  return {
    calls,

    get crashes() {
      return crashes;
    },

    crash,

    powerCutAfter(operations, mode = 'lose-unsynced', seed = 1) {
      cut = { remaining: operations, mode, seed };
    },

    openWriters: () => writers,

    locate(key) {
      checkBlobKey(key);
      return `memory:${key}`;
    },

    async put(key, bytes) {
      checkBlobKey(key);
      await enter('put');
      const blob = new Blob();
      blob.writeAt(bytes, 0);
      blob.persist();
      names.set(key, blob);
      durableNames.set(key, blob);
    },

    async get(key) {
      checkBlobKey(key);
      await enter('get');
      return names.get(key)?.bytes().slice() ?? null;
    },

    async createWriter() {
      await enter('createWriter');
      const since = epoch;
      const blob = new Blob();
      let state: 'open' | 'done' = 'open';
      writers++;
      const finish = () => {
        if (state === 'open') writers--;
        state = 'done';
      };
      const writer: BlobWriter = {
        get size() {
          return blob.length;
        },
        async write(bytes) {
          if (state !== 'open') throw new Error('blob writer: write after commit or abort');
          // Copied now, at call time, like the file writer's position: writes land in call order.
          const copy = bytes.slice();
          const at = blob.length;
          blob.writeAt(copy, at);
          try {
            await enter('writer.write', since);
          } catch (error) {
            blob.truncate(at);
            throw error;
          }
        },
        async commit(key) {
          checkBlobKey(key);
          if (state !== 'open') throw new Error('blob writer: commit after commit or abort');
          try {
            await enter('writer.commit', since);
          } finally {
            finish();
          }
          blob.persist();
          names.set(key, blob);
          durableNames.set(key, blob);
        },
        async abort() {
          finish();
        },
      };
      return writer;
    },

    async openReader(key) {
      checkBlobKey(key);
      await enter('openReader');
      const blob = names.get(key);
      return blob ? reader(blob, epoch, 'reader') : null;
    },

    async openUpdater(key) {
      checkBlobKey(key);
      await enter('openUpdater');
      const since = epoch;
      let blob = names.get(key);
      const created = !blob;
      if (!blob) {
        blob = new Blob();
        names.set(key, blob);
      }
      const target = blob;
      let nameDurable = !created;
      const base = reader(target, since, 'updater');
      const updater: BlobUpdater = {
        size: () => base.size(),
        read: (into, position) => base.read(into, position),
        close: () => base.close(),
        created,
        async write(bytes, position) {
          await enter('updater.write', since);
          if (base.closed) throw new Error('write after close');
          target.change({ kind: 'write', bytes, position });
        },
        async truncate(length) {
          await enter('updater.truncate', since);
          if (base.closed) throw new Error('truncate after close');
          target.change({ kind: 'truncate', length });
        },
        async sync() {
          await enter('updater.sync', since);
          target.persist();
          // The key becomes durable with the first sync, unless it was replaced or deleted meanwhile.
          if (!nameDurable && names.get(key) === target) durableNames.set(key, target);
          nameDurable = true;
        },
      };
      return updater;
    },

    async delete(key) {
      checkBlobKey(key);
      await enter('delete');
      durableNames.delete(key);
      return names.delete(key);
    },

    async list(prefix = '') {
      await enter('list');
      return [...names.keys()].filter((key) => key.startsWith(prefix)).sort();
    },
  };
}

export type BlobOperation =
  | 'put'
  | 'get'
  | 'createWriter'
  | 'openReader'
  | 'openUpdater'
  | 'delete'
  | 'list'
  | 'write'
  | 'commit'
  | 'read'
  | 'truncate'
  | 'sync';

export interface FaultyBlobStore extends BlobStore {
  /** The next call of this operation (on the store or any handle of it) rejects with error and does nothing. */
  failNext(operation: BlobOperation, error?: Error): void;
}

/** Wraps any BlobStore (the file store, the fake) so a test can make one operation fail: a full disk, an EIO. */
export function withFaults(inner: BlobStore): FaultyBlobStore {
  const queued = new Map<BlobOperation, Error[]>();
  const check = (operation: BlobOperation): void => {
    const error = queued.get(operation)?.shift();
    if (error) throw error;
  };
  const guarded = <A extends unknown[], R>(operation: BlobOperation, call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      check(operation);
      return call(...args);
    };
  const wrapReader = (r: BlobReader): BlobReader => ({
    size: () => r.size(),
    read: guarded('read', (into: Uint8Array, position: number) => r.read(into, position)),
    close: () => r.close(),
  });

  return {
    failNext(operation, error = new Error(`${operation} failed (injected)`)) {
      const list = queued.get(operation) ?? [];
      list.push(error);
      queued.set(operation, list);
    },
    locate: (key) => inner.locate(key),
    put: guarded('put', (key: string, bytes: Uint8Array) => inner.put(key, bytes)),
    get: guarded('get', (key: string) => inner.get(key)),
    delete: guarded('delete', (key: string) => inner.delete(key)),
    list: guarded('list', (prefix?: string) => inner.list(prefix)),
    createWriter: guarded('createWriter', async () => {
      const w = await inner.createWriter();
      return {
        get size() {
          return w.size;
        },
        write: guarded('write', (bytes: Uint8Array) => w.write(bytes)),
        commit: guarded('commit', (key: string) => w.commit(key)),
        abort: () => w.abort(),
      };
    }),
    openReader: guarded('openReader', async (key: string) => {
      const r = await inner.openReader(key);
      return r && wrapReader(r);
    }),
    openUpdater: guarded('openUpdater', async (key: string) => {
      const u = await inner.openUpdater(key);
      return {
        ...wrapReader(u),
        created: u.created,
        write: guarded('write', (bytes: Uint8Array, position: number) => u.write(bytes, position)),
        truncate: guarded('truncate', (length: number) => u.truncate(length)),
        sync: guarded('sync', () => u.sync()),
      };
    }),
  };
}
