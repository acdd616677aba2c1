import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

import { afterAll, describe, expect, it } from 'vitest';

import { loadDataset } from '../../src/ml/datasets';
import { encodeIdx } from '../../src/ml/datasets/idx';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hypergpu-datasets-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function folder(name: string, files: Record<string, string | Uint8Array>): string {
  const dir = path.join(tmp, name);
  for (const [file, content] of Object.entries(files)) {
    writeFileSync(path.join(dir, file), content, { flag: 'w' });
  }
  return dir;
}

function mkdir(name: string): string {
  const dir = path.join(tmp, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

describe('mnist', () => {
  it('loads the real MNIST with the right sizes and labels', async () => {
    const ds = await loadDataset('mnist');
    expect(ds.trainSize).toBe(60_000);
    expect(ds.testSize).toBe(10_000);
    expect(ds.inputShape).toEqual([28, 28, 1]);
    expect(ds.numClasses).toBe(10);

    const test = ds.testSet();
    expect(test.count).toBe(10_000);
    expect(test.x.length).toBe(10_000 * 784);
    const counts = new Array(10).fill(0);
    for (const label of test.labels) counts[label]++;
    // Every digit appears roughly 1,000 times in the test set.
    for (const c of counts) expect(c).toBeGreaterThan(850);
    expect(counts.reduce((a, b) => a + b)).toBe(10_000);
    let max = 0;
    let min = 1;
    for (const v of test.x) {
      if (v > max) max = v;
      if (v < min) min = v;
    }
    expect(min).toBe(0);
    expect(max).toBe(1);
    expect(ds.testSet()).toBe(test); // cached
  });

  it('fills train batches from arbitrary indices', async () => {
    const ds = await loadDataset('mnist');
    const x = new Float32Array(3 * 784);
    const y = new Int32Array(3);
    ds.fillTrainBatch([59_999, 0, 12_345], x, y);
    // The first MNIST training digit is a 5, the last an 8.
    expect(y[1]).toBe(5);
    expect(y[0]).toBe(8);
    for (const v of y) expect(v >= 0 && v < 10).toBe(true);
    const ink = (k: number) => x.subarray(k * 784, (k + 1) * 784).reduce((a, b) => a + b, 0);
    for (let k = 0; k < 3; k++) expect(ink(k)).toBeGreaterThan(20);
    expect(() => ds.fillTrainBatch([60_000], x, y)).toThrow(/index 60000 outside the training set/);
    expect(() => ds.fillTrainBatch([-1], x, y)).toThrow(RangeError);
    expect(() => ds.fillTrainBatch([0, 1, 2, 3], x, new Int32Array(4))).toThrow(/x holds/);
  });

  it('caches per process', async () => {
    expect(await loadDataset('mnist')).toBe(await loadDataset('mnist'));
  });
});

describe('folder datasets', () => {
  const images = (n: number, seed: number) => Uint8Array.from({ length: n * 4 * 4 }, (_, i) => (i * 31 + seed) % 256);
  const labels = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 3);

  it('reads the four IDX files, gzipped or not', async () => {
    const dir = mkdir('idx');
    folder('idx', {
      'train-images-idx3-ubyte.gz': gzipSync(encodeIdx([6, 4, 4], images(6, 1))),
      'train-labels-idx1-ubyte': encodeIdx([6], labels(6)),
      't10k-images-idx3-ubyte': encodeIdx([3, 4, 4], images(3, 2)),
      't10k-labels-idx1-ubyte.gz': gzipSync(encodeIdx([3], labels(3))),
    });
    const ds = await loadDataset(`folder:${dir}`);
    expect(ds.trainSize).toBe(6);
    expect(ds.testSize).toBe(3);
    expect(ds.inputShape).toEqual([4, 4, 1]);
    expect(ds.numClasses).toBe(3);
    const x = new Float32Array(16);
    const y = new Int32Array(1);
    ds.fillTrainBatch([5], x, y);
    expect(y[0]).toBe(2);
    expect(x[0]).toBeCloseTo(images(6, 1)[5 * 16] / 255, 6);
  });

  it('reads train.csv and test.csv with a header and 0-255 pixels', async () => {
    const dir = mkdir('csv255');
    const header = ['label', ...Array.from({ length: 4 }, (_, i) => `p${i}`)].join(',');
    folder('csv255', {
      'train.csv': `${header}\n1,0,128,255,3\r\n0,10,20,30,40\n\n`,
      'test.csv': '2,1,2,3,4\n',
    });
    const ds = await loadDataset(`folder:${dir}`);
    expect(ds.trainSize).toBe(2);
    expect(ds.testSize).toBe(1);
    expect(ds.inputShape).toEqual([2, 2, 1]);
    expect(ds.numClasses).toBe(3);
    const x = new Float32Array(8);
    const y = new Int32Array(2);
    ds.fillTrainBatch([0, 1], x, y);
    expect(Array.from(y)).toEqual([1, 0]);
    expect(x[1]).toBeCloseTo(128 / 255, 6);
    expect(x[2]).toBe(1);
    expect(x[4]).toBeCloseTo(10 / 255, 6);
  });

  it('reads 0-1 pixel CSVs without a header', async () => {
    const dir = mkdir('csv01');
    folder('csv01', { 'train.csv': '1,0,0.5,1,0.25\n', 'test.csv': '0,1,1,0,0\n' });
    const ds = await loadDataset(`folder:${dir}`);
    const x = new Float32Array(4);
    ds.fillTrainBatch([0], x, new Int32Array(1));
    expect(x[1]).toBeCloseTo(0.5, 2);
    expect(x[2]).toBe(1);
    expect(ds.testSet().x[0]).toBe(1);
  });

  it('reads training images from disk per batch when asked, the same values as from memory', async () => {
    const dir = mkdir('ondisk');
    folder('ondisk', {
      'train-images-idx3-ubyte': encodeIdx([7, 4, 4], images(7, 5)),
      'train-labels-idx1-ubyte': encodeIdx([7], labels(7)),
      't10k-images-idx3-ubyte': encodeIdx([2, 4, 4], images(2, 6)),
      't10k-labels-idx1-ubyte': encodeIdx([2], labels(2)),
    });
    const inMemory = await loadDataset(`folder:${dir}`);
    const onDisk = await loadDataset(`folder:${dir}`, { trainImages: 'disk' });
    expect(onDisk).not.toBe(inMemory); // cached apart: a caller that wants the images in memory still gets them
    expect([onDisk.trainSize, onDisk.testSize, onDisk.numClasses]).toEqual([7, 2, 3]);
    const indices = [6, 0, 3, 3, 1];
    const fill = (ds: typeof inMemory) => {
      const x = new Float32Array(indices.length * 16);
      const y = new Int32Array(indices.length);
      ds.fillTrainBatch(indices, x, y);
      return { x, y };
    };
    expect(fill(onDisk)).toEqual(fill(inMemory));
    expect(fill(onDisk).x[16]).toBeCloseTo(images(7, 5)[0] / 255, 6);
    expect(() => onDisk.fillTrainBatch([7], new Float32Array(16), new Int32Array(1))).toThrow(/index 7 outside the training set/);
    expect(onDisk.testSet().x).toEqual(inMemory.testSet().x);

    // Checked at load as parseIdx checks an in-memory file: a file shorter than its header says is refused.
    const short = mkdir('ondisk-short');
    folder('ondisk-short', {
      'train-images-idx3-ubyte': encodeIdx([7, 4, 4], images(7, 5)).subarray(0, 16 + 6 * 16),
      'train-labels-idx1-ubyte': encodeIdx([7], labels(7)),
      't10k-images-idx3-ubyte': encodeIdx([2, 4, 4], images(2, 6)),
      't10k-labels-idx1-ubyte': encodeIdx([2], labels(2)),
    });
    await expect(loadDataset(`folder:${short}`, { trainImages: 'disk' })).rejects.toThrow(/truncated IDX data/);
  });

  it('explains what is missing or wrong', async () => {
    const empty = mkdir('empty');
    await expect(loadDataset(`folder:${empty}`)).rejects.toThrow(/has neither train-images-idx3-ubyte .* nor train\.csv/);
    await expect(loadDataset(`folder:${path.join(tmp, 'nope')}`)).rejects.toThrow(/is not a folder/);
    await expect(loadDataset('imagenet')).rejects.toThrow(/unknown dataset 'imagenet': use 'mnist' or 'folder:<path>'/);

    const noTest = mkdir('notest');
    folder('notest', { 'train.csv': '1,2,3\n' });
    await expect(loadDataset(`folder:${noTest}`)).rejects.toThrow(/has train\.csv but no test\.csv/);

    const ragged = mkdir('ragged');
    folder('ragged', { 'train.csv': '1,2,3\n1,2\n', 'test.csv': '1,2,3\n' });
    await expect(loadDataset(`folder:${ragged}`)).rejects.toThrow(/train\.csv:2: 1 pixel values, earlier rows have 2/);

    const halfIdx = mkdir('halfidx');
    folder('halfidx', { 'train-images-idx3-ubyte': encodeIdx([1, 4, 4], images(1, 0)) });
    await expect(loadDataset(`folder:${halfIdx}`)).rejects.toThrow(/lacks train-labels-idx1-ubyte/);
  });
});

describe('describeDataset', () => {
  it('gives the sizes of MNIST from the IDX headers alone', async () => {
    const { describeDataset } = await import('../../src/ml/datasets');
    expect(await describeDataset('mnist')).toEqual({ trainSize: 60_000, testSize: 10_000, inputShape: [28, 28, 1] });
  });
});
