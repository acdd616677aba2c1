// Shared by the audit tests (integration and browser): a small dataset whose epochs close in a few rounds, and
// the payloads of dishonest simulated agents.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodeIdx } from '../../src/ml/datasets/idx';

/** Ten classes a small MLP separates easily (class c lights rows 2c+4 and 2c+5 of a 28x28 image, over noise). */
export function writeDigits(dir: string, train: number, test: number): void {
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
    writeFileSync(path.join(dir, `${name}-images-idx3-ubyte`), encodeIdx([n, 28, 28], images));
    writeFileSync(path.join(dir, `${name}-labels-idx1-ubyte`), encodeIdx([n], labels));
  };
  split('train', train);
  split('t10k', test);
}

/**
 * A fabricated update: a plausible norm (`norm`, about what an honest MLP gradient has here) in a random
 * direction. It passes every check at the gate (finite, right size, norm within the limits); only a
 * recomputation can tell it from honest work.
 */
export function fabricatedPayload(norm = 1, seed = 99): (paramCount: number) => Float32Array {
  return (paramCount) => {
    let s = seed >>> 0;
    const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5);
    const v = new Float32Array(paramCount);
    let sq = 0;
    for (let i = 0; i < paramCount; i++) {
      v[i] = rand();
      sq += v[i] * v[i];
    }
    const scale = norm / Math.sqrt(sq);
    for (let i = 0; i < paramCount; i++) v[i] *= scale;
    return v;
  };
}

/** An update the gate refuses (NaN values): its rejection and reason land in the node's timeline. */
export function nanPayload(paramCount: number): Float32Array {
  return new Float32Array(paramCount).fill(Number.NaN);
}
