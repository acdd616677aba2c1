// A small synthetic IDX dataset a tiny MLP learns at once: class c lights rows 2c+4 and 2c+5 of a 28x28 image,
// over noise. Small epochs make epoch-level behaviour (settlement) testable in seconds.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeIdx } from '../../src/ml/datasets/idx';

/** Writes train and t10k IDX files into `dir`; `gzip` writes them as `.gz`, as MNIST is usually downloaded. */
export function writeDigits(dir: string, train: number, test: number, options: { gzip?: boolean } = {}): void {
  mkdirSync(dir, { recursive: true });
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const split = (name: string, n: number) => {
    const images = new Uint8Array(n * 784);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const c = i % 10;
      labels[i] = c;
      for (let p = 0; p < 784; p++) images[i * 784 + p] = Math.floor(rand() * 60);
      for (let row = 2 * c + 4; row < 2 * c + 6; row++) for (let col = 2; col < 26; col++) images[i * 784 + row * 28 + col] = 200 + Math.floor(rand() * 55);
    }
    const write = (file: string, bytes: Uint8Array) =>
      options.gzip ? writeFileSync(path.join(dir, `${file}.gz`), gzipSync(bytes)) : writeFileSync(path.join(dir, file), bytes);
    write(`${name}-images-idx3-ubyte`, encodeIdx([n, 28, 28], images));
    write(`${name}-labels-idx1-ubyte`, encodeIdx([n], labels));
  };
  split('train', train);
  split('t10k', test);
}
