// Datasets by name: the registry maps ids to folders on this machine, and what it throws names the id, never the
// folder (the full error, path included, goes only to the owner's log).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { encodeIdx } from '../../src/ml/datasets/idx';
import { DatasetConfigError, DatasetRegistry, parseDatasetSpecs, UnknownDatasetError } from '../../src/ml/datasets/registry';
import { sessionDescriptorSchema } from '../../src/protocol/messages';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hypergpu-registry-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function idxFolder(name: string, train: number, test: number, options: { dropTestLabels?: boolean } = {}): string {
  const dir = path.join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const write = (split: string, n: number) => {
    writeFileSync(path.join(dir, `${split}-images-idx3-ubyte`), encodeIdx([n, 2, 2], new Uint8Array(n * 4).fill(9)));
    if (!(options.dropTestLabels && split === 't10k')) writeFileSync(path.join(dir, `${split}-labels-idx1-ubyte`), encodeIdx([n], new Uint8Array(n).map((_, i) => i % 2)));
  };
  write('train', train);
  write('t10k', test);
  return dir;
}

describe('parseDatasetSpecs', () => {
  it('reads name=path entries, comma-separated or repeated, resolving paths against cwd', () => {
    const specs = parseDatasetSpecs(['a=./x,b=/data/y', 'c_1.v2=z'], '/work');
    expect([...specs]).toEqual([
      ['a', '/work/x'],
      ['b', '/data/y'],
      ['c_1.v2', '/work/z'],
    ]);
    expect(parseDatasetSpecs([''])).toEqual(new Map());
  });

  it('refuses malformed entries, names that are not ids, mnist and duplicates', () => {
    expect(() => parseDatasetSpecs(['noequals'])).toThrow(DatasetConfigError);
    expect(() => parseDatasetSpecs(['a='])).toThrow(/must be name=path/);
    expect(() => parseDatasetSpecs(['folder:x=/d'])).toThrow(/dataset name 'folder:x' must be/);
    expect(() => parseDatasetSpecs(['../up=/d'])).toThrow(/must be 1-64 letters/);
    expect(() => parseDatasetSpecs(['mnist=/d'])).toThrow(/built in/);
    expect(() => parseDatasetSpecs(['a=/d', 'a=/e'])).toThrow(/given twice/);
  });
});

describe('DatasetRegistry', () => {
  it('knows mnist and what was registered; an unknown id lists the registered ones', async () => {
    const dir = idxFolder('tiny', 6, 2);
    const registry = new DatasetRegistry(new Map([['tiny', dir]]));
    expect(registry.ids()).toEqual(['mnist', 'tiny']);
    expect(registry.has('tiny') && registry.has('mnist') && !registry.has('other')).toBe(true);
    await expect(registry.describe('tiny')).resolves.toEqual({ trainSize: 6, testSize: 2, inputShape: [2, 2, 1] });
    const ds = await registry.load('tiny');
    expect(ds.trainSize).toBe(6);
    await expect(registry.describe('other')).rejects.toThrow(UnknownDatasetError);
    await expect(registry.describe('other')).rejects.toThrow("unknown dataset 'other'; registered: mnist, tiny");
  });

  it('reports a broken or missing folder by id, never by path; the full error goes to the log', async () => {
    const broken = idxFolder('broken', 4, 2, { dropTestLabels: true });
    const missing = path.join(tmp, 'does-not-exist');
    const logged: string[] = [];
    const registry = new DatasetRegistry(
      new Map([
        ['broken', broken],
        ['gone', missing],
      ]),
      (line) => logged.push(line),
    );
    for (const id of ['broken', 'gone']) {
      const error = await registry.load(id).then(
        () => null,
        (e: Error) => e,
      );
      expect(error?.message).toMatch(new RegExp(`^dataset '${id}' cannot be read: `));
      expect(error?.message).not.toContain(tmp);
      expect(error?.message).not.toMatch(/\/tmp|ENOENT \//);
    }
    expect(logged.join('\n')).toContain(broken);
    expect(logged.join('\n')).toContain(missing);
    const listing = await registry.list();
    expect(listing.map((l) => l.id)).toEqual(['mnist', 'broken', 'gone']);
    expect(JSON.stringify(listing)).not.toContain(tmp);
    // The coordinator describes an IDX folder by its headers alone, so only the missing folder is an error here.
    expect(listing[2]).toMatchObject({ id: 'gone', error: expect.stringMatching(/cannot be read/) });
  });

  it('refuses a folder whose gzipped images inflate past what their header declares', async () => {
    const dir = idxFolder('bomb', 4, 2);
    rmSync(path.join(dir, 'train-images-idx3-ubyte'));
    // The header promises 4 images of 2x2; the stream carries 32 MiB more.
    const header = encodeIdx([4, 2, 2], new Uint8Array(16));
    writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(Buffer.concat([Buffer.from(header), Buffer.alloc(32 << 20)])));
    const logged: string[] = [];
    const registry = new DatasetRegistry(new Map([['bomb', dir]]), (line) => logged.push(line));
    const error = await registry.load('bomb').then(
      () => null,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/^dataset 'bomb' cannot be read: .*gunzips to more than the 32 bytes its IDX header declares; refused/);
    expect(error?.message).not.toContain(tmp);
    expect(logged.join('\n')).toContain(dir);
  });

  it('gives its own process the folder (for the evaluator thread) but keeps built-ins as they are', () => {
    const registry = new DatasetRegistry(new Map([['tiny', '/data/tiny']]));
    expect(registry.source('mnist')).toBe('mnist');
    expect(registry.source('tiny')).toBe('folder:/data/tiny');
    expect(() => registry.source('x')).toThrow(UnknownDatasetError);
    expect(registry.redact('tiny', 'dataset folder:/data/tiny: /data/tiny is not a folder')).toBe("dataset 'tiny': <dataset tiny> is not a folder");
  });
});

describe('the session descriptor', () => {
  it('carries a dataset id, never a path', () => {
    const base = { sessionId: 1, model: 'mlp', seed: 1, paramCount: 10 };
    expect(sessionDescriptorSchema.safeParse({ ...base, dataset: 'digits' }).success).toBe(true);
    expect(sessionDescriptorSchema.safeParse({ ...base, dataset: 'folder:/home/me/data' }).success).toBe(false);
    expect(sessionDescriptorSchema.safeParse({ ...base, dataset: '/etc' }).success).toBe(false);
  });
});
