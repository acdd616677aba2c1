// Shared by the audit tests (integration and browser): a small dataset whose epochs close in a few rounds, and
// the payloads of dishonest simulated agents.
export { writeDigits } from './digits';

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
