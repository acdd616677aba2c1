// The file BlobStore: the shared conformance suite on a real folder, then what only files have: the layout
// (one file per key, where checkpoints and journals always were), no temporary file left behind, leftovers of
// a crashed process swept, folders created on demand.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createFileBlobStore } from '../../src/server/adapters/blob-store';
import { describeBlobStoreConformance } from '../support/blob-store-conformance';

const root = mkdtempSync(join(tmpdir(), 'hypergpu-blobs-'));
let dirs = 0;
const freshDir = () => join(root, `store-${++dirs}`, 'blobs');

afterAll(() => rmSync(root, { recursive: true, force: true }));

describeBlobStoreConformance('file store', () => createFileBlobStore(freshDir()));

/** The pid of a process that has exited (one this test started), for a temporary file a crash left behind. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

describe('file blob store on disk', () => {
  it('keeps each key in a file of that name in its folder, creating the folders, with no temporary file left', async () => {
    const dir = freshDir();
    const store = createFileBlobStore(dir);
    expect(store.root).toBe(dir);
    expect(store.locate('session-1.journal')).toBe(join(dir, 'session-1.journal'));
    await store.put('a.ckpt', Uint8Array.from([1, 2, 3]));
    const writer = await store.createWriter();
    await writer.write(Uint8Array.from([4, 5]));
    expect(readdirSync(dir).filter((name) => name.startsWith('.tmp-'))).toHaveLength(1); // staged, unnamed
    await writer.commit('b.ckpt');
    const updater = await store.openUpdater('session-1.journal');
    await updater.write(Uint8Array.from([6]), 0);
    await updater.sync();
    await updater.close();
    expect(readdirSync(dir).sort()).toEqual(['a.ckpt', 'b.ckpt', 'session-1.journal']);
    expect([...readFileSync(join(dir, 'b.ckpt'))]).toEqual([4, 5]);
  });

  it('reads files it did not write (a data folder from before the store), and lists only regular files with key names', async () => {
    const dir = freshDir();
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(join(dir, 'old.ckpt'), 'written by an older build');
    writeFileSync(join(dir, '.tmp-1-leftover'), 'not a key');
    writeFileSync(join(dir, 'has space'), 'not a key');
    const store = createFileBlobStore(dir);
    expect(await store.list()).toEqual(['old.ckpt']);
    expect(new TextDecoder().decode((await store.get('old.ckpt'))!)).toBe('written by an older build');
    await expect(store.openReader('sub')).rejects.toThrow(/not a regular file/);
  });

  it('removes temporary files of processes that are gone, and keeps those of live ones', async () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    const dead = join(dir, `.tmp-${deadPid()}-0123456789abcdef`);
    const mine = join(dir, `.tmp-${process.pid}-fedcba9876543210`);
    writeFileSync(dead, 'a checkpoint half written when its process died');
    writeFileSync(mine, 'a writer of this process, still running');
    const store = createFileBlobStore(dir);
    await store.get('nothing'); // reads do not sweep
    expect(statSync(dead).isFile()).toBe(true);
    await store.put('k', Uint8Array.from([1]));
    expect(() => statSync(dead)).toThrow();
    expect(statSync(mine).isFile()).toBe(true);
  });

  it('an aborted or failed writer leaves no file', async () => {
    const dir = freshDir();
    const store = createFileBlobStore(dir);
    const aborted = await store.createWriter();
    await aborted.write(new Uint8Array(1000));
    await aborted.abort();
    const failed = await store.createWriter();
    await failed.write(new Uint8Array(10));
    mkdirSync(join(dir, 'taken')); // a folder where the blob should go: the rename fails
    await expect(failed.commit('taken')).rejects.toThrow();
    expect(readdirSync(dir)).toEqual(['taken']);
  });
});
