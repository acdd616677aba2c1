// The BlobStore port on a local folder: one file per key, `<dir>/<key>`. Checkpoints and the update journal live
// in their own stores (`<data>/checkpoints`, `<data>/journal`), so their files sit where they always have.
//
// Durability, as POSIX gives it:
// - a blob that replaces a key (put, a BlobWriter's commit) is written to a temporary file in the same folder,
//   fsync'd, renamed over the key's file, then the folder is fsync'd, and only then does the call resolve. A
//   crash leaves the old file or the new one under the key, never a partial one;
// - a BlobUpdater's sync() is fdatasync (data and length), plus an fsync of the folder the first time when
//   opening created the file, so the name survives too;
// - delete fsyncs the folder after the unlink; folders this store creates have their parents fsync'd.
// Directory fsync is skipped only where the platform refuses it outright (it cannot be opened or synced as a
// file there); an I/O error from it fails the call.
//
// Temporary files are named `.tmp-<pid>-<random>` (not valid keys, so never listed). The first write through a
// store removes the ones left by processes that are no longer running (a crash mid-write); one host owns a store
// folder, as one coordinator owns its data folder.

import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { BlobReader, BlobStore, BlobUpdater, BlobWriter } from '../core/ports';

const KEY = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;
const TEMP_PREFIX = '.tmp-';
const TEMP_NAME = /^\.tmp-(\d+)-/;
/** Reads of a whole blob go in pieces this big, so a large get() leaves the event loop a turn in between. */
const READ_CHUNK_BYTES = 8 * 1024 * 1024;

/** Throws unless key is a valid blob key (see BlobStore). Shared with the in-memory fake. */
export function checkBlobKey(key: string): void {
  if (typeof key !== 'string' || !KEY.test(key)) {
    throw new RangeError(`blob key ${JSON.stringify(key)} is not 1-200 characters of [A-Za-z0-9._-] that do not start with '.'`);
  }
}

export interface FileBlobStore extends BlobStore {
  /** The folder, absolute. */
  readonly root: string;
}

const codeOf = (error: unknown) => (error as NodeJS.ErrnoException | null)?.code;

/** Error codes of a platform that cannot open or fsync a folder (not of a failed fsync). */
const DIRECTORY_SYNC_UNSUPPORTED = new Set(['EISDIR', 'EPERM', 'EACCES', 'EINVAL', 'ENOTSUP', 'EBADF']);

async function fsyncDirectory(dir: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(dir, 'r');
  } catch (error) {
    if (DIRECTORY_SYNC_UNSUPPORTED.has(codeOf(error) ?? '')) return;
    throw error;
  }
  try {
    await handle.sync();
  } catch (error) {
    if (!DIRECTORY_SYNC_UNSUPPORTED.has(codeOf(error) ?? '')) throw error;
  } finally {
    await handle.close();
  }
}

async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let at = 0;
  while (at < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, at, bytes.length - at, position + at);
    at += bytesWritten;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (error) {
    return codeOf(error) === 'EPERM';
  }
}

function fileReader(handle: FileHandle): BlobReader {
  let closed = false;
  return {
    async size() {
      return (await handle.stat()).size;
    },
    async read(into, position) {
      if (into.length === 0) return 0;
      const { bytesRead } = await handle.read(into, 0, into.length, position);
      return bytesRead;
    },
    async close() {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}

export function createFileBlobStore(dir: string): FileBlobStore {
  const root = resolve(dir);
  let prepared: Promise<void> | null = null;

  /** Creates the folder (durably) and sweeps dead processes' temporary files, once per store. */
  function prepare(): Promise<void> {
    prepared ??= (async () => {
      const first = await mkdir(root, { recursive: true });
      if (first !== undefined) {
        // Each folder mkdir created is an entry in its parent: make those durable, deepest first.
        for (let created = root; ; created = dirname(created)) {
          await fsyncDirectory(dirname(created));
          if (created === resolve(first) || dirname(created) === created) break;
        }
      }
      for (const name of await readdir(root)) {
        const match = TEMP_NAME.exec(name);
        if (!match) continue;
        const pid = Number(match[1]);
        if (pid !== process.pid && !isAlive(pid)) await rm(join(root, name), { force: true });
      }
    })().catch((error: unknown) => {
      prepared = null;
      throw error;
    });
    return prepared;
  }

  function pathOf(key: string): string {
    checkBlobKey(key);
    return join(root, key);
  }

  async function openReader(key: string): Promise<BlobReader | null> {
    const path = pathOf(key);
    let handle: FileHandle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return null;
      throw error;
    }
    const info = await handle.stat().catch(async (error: unknown) => {
      await handle.close();
      throw error;
    });
    if (!info.isFile()) {
      await handle.close();
      throw new Error(`blob ${path} is not a regular file`);
    }
    return fileReader(handle);
  }

  async function createWriter(): Promise<BlobWriter> {
    await prepare();
    const temp = join(root, `${TEMP_PREFIX}${process.pid}-${randomBytes(8).toString('hex')}`);
    const handle = await open(temp, 'wx');
    let size = 0;
    let state: 'open' | 'committing' | 'done' = 'open';
    const discard = async () => {
      await handle.close().catch(() => undefined);
      await rm(temp, { force: true });
    };
    return {
      get size() {
        return size;
      },
      async write(bytes) {
        if (state !== 'open') throw new Error('blob writer: write after commit or abort');
        // Positions are taken at call time, so writes fired without awaiting still land in call order.
        const at = size;
        size += bytes.length;
        await writeFully(handle, bytes, at);
      },
      async commit(key) {
        const path = pathOf(key);
        if (state !== 'open') throw new Error('blob writer: commit after commit or abort');
        state = 'committing';
        try {
          await handle.sync();
          await handle.close();
          await rename(temp, path);
        } catch (error) {
          state = 'done';
          await discard();
          throw error;
        }
        state = 'done';
        await fsyncDirectory(root);
      },
      async abort() {
        if (state !== 'open') return;
        state = 'done';
        await discard();
      },
    };
  }

  return {
    root,

    locate: pathOf,

    async put(key, bytes) {
      checkBlobKey(key);
      const writer = await createWriter();
      try {
        await writer.write(bytes);
        await writer.commit(key);
      } catch (error) {
        await writer.abort();
        throw error;
      }
    },

    async get(key) {
      const reader = await openReader(key);
      if (!reader) return null;
      try {
        const size = await reader.size();
        const bytes = new Uint8Array(size);
        for (let at = 0; at < size; ) {
          const read = await reader.read(bytes.subarray(at, Math.min(size, at + READ_CHUNK_BYTES)), at);
          if (read === 0) throw new Error(`blob ${pathOf(key)} shrank to ${at} bytes while being read (${size} expected)`);
          at += read;
        }
        return bytes;
      } finally {
        await reader.close();
      }
    },

    createWriter,

    openReader,

    async openUpdater(key) {
      const path = pathOf(key);
      let handle: FileHandle;
      let created = false;
      try {
        handle = await open(path, 'r+');
      } catch (error) {
        if (codeOf(error) !== 'ENOENT') throw error;
        await prepare();
        try {
          handle = await open(path, 'wx+');
          created = true;
        } catch (raced) {
          if (codeOf(raced) !== 'EEXIST') throw raced;
          handle = await open(path, 'r+');
        }
      }
      let nameDurable = !created;
      const updater: BlobUpdater = {
        ...fileReader(handle),
        created,
        async write(bytes, position) {
          await writeFully(handle, bytes, position);
        },
        async truncate(length) {
          await handle.truncate(length);
        },
        async sync() {
          await handle.datasync();
          if (!nameDurable) {
            await fsyncDirectory(root);
            nameDurable = true;
          }
        },
      };
      return updater;
    },

    async delete(key) {
      const path = pathOf(key);
      try {
        await unlink(path);
      } catch (error) {
        if (codeOf(error) === 'ENOENT') return false;
        throw error;
      }
      await fsyncDirectory(root);
      return true;
    },

    async list(prefix = '') {
      let entries;
      try {
        entries = await readdir(root, { withFileTypes: true });
      } catch (error) {
        if (codeOf(error) === 'ENOENT') return [];
        throw error;
      }
      return entries
        .filter((entry) => entry.isFile() && KEY.test(entry.name) && entry.name.startsWith(prefix))
        .map((entry) => entry.name)
        .sort();
    },
  };
}
