import v8 from 'node:v8';

// The V8 heap flags and the malloc setting the coordinator runs with: `npm start` and `npm run dev` pass them
// (package.json), and so do the tests and the benchmarks that start the server (tests/support/server-process.ts,
// tests/support/chaos/cluster.ts, playwright.config.ts, bench/lib/procs.ts).
//
// Why: with V8's defaults, the coordinator's old generation (about 30 MB live while 2 agents train the MLP) was
// kept within about 23 MB of its limit, and V8 ran an incremental mark-compact about 5 times a second (73-107 in
// 20 s, 0.8-1.0 s of pauses, plus the concurrent marking threads). Measured with 2 agents training the MLP, 20 s
// of steady state each (--trace-gc, /proc CPU of the server process), the defaults against these flags:
//   server CPU 28.9-31.9 ms per round -> 18.2-18.7; main thread 9.4-10.7 ms -> 6.2-6.3; mark-compacts 73-107 -> 1-5;
//   rounds 460-492 -> 593-599 in 20 s; RSS 331 MB -> 312 MB.
// The 64 MB floor under the old generation's limit alone gave 25.4 ms per round and 67 mark-compacts in 20 s; with
// 1 MB semi-spaces as well, the figures above. Measured, not derived: I have not traced which V8 heuristic the
// small young generation changes.
export const SERVER_NODE_FLAGS = ['--max-semi-space-size=1', '--initial-old-space-size=64'] as const;

/**
 * V8 reads its heap flags each time it creates an isolate, and every worker thread is one: with the flags above,
 * the evaluator and the auditor (tfjs, which allocates a tensor's bookkeeping objects on every op) got 1 MB
 * semi-spaces too, so objects that live through one recomputation were promoted and piled up in the old
 * generation until a mark-compact: the auditor's heap climbed from 28 to 57 MB and fell back to 37 MB every few
 * minutes, the largest part of the sawtooth in the server's RSS over the 30-minute soak (measured with the
 * worker memory metrics, hypergpu_worker_heap_size_bytes). Once the main isolate exists, the server resets these
 * two flags (0: V8's own sizing), so the isolates made after it - the workers - size their heaps themselves,
 * within the limits each worker is given (WorkerSupervisorOptions.resourceLimits).
 */
export const WORKER_HEAP_FLAG_RESETS = ['--max-semi-space-size=0', '--initial-old-space-size=0'] as const;

/** Applies WORKER_HEAP_FLAG_RESETS: call once, in the server process, before the first worker starts. */
export function releaseWorkerHeapFlags(setFlags: (flags: string) => void = v8.setFlagsFromString): void {
  for (const flag of WORKER_HEAP_FLAG_RESETS) setFlags(flag);
}

/**
 * The environment the coordinator's process starts with, beside the flags: read by glibc's malloc when the process
 * starts, so the launchers set it (the server cannot set it for itself).
 *
 * MALLOC_MMAP_THRESHOLD_: every allocation of 128 KiB or more gets its own mapping, returned to the system when it
 * is freed. glibc's default threshold starts at 128 KiB but rises to the size of each large block freed (up to 32
 * MiB), after which blocks of that size, such as the buffers ws assembles each received update frame in (437 KiB
 * for the MLP), are carved from the malloc heaps; those heaps fragmented: /proc/<pid>/smaps over a 30-minute soak
 * showed the main heap between 39 and 63 MB and one thread's arena growing from 10 to 23.5 MB. Setting it fixes the
 * threshold (glibc then stops adjusting it). Measured in the soak benchmark, 2 agents training the MLP for 30
 * minutes: without it: RSS 308 MB after the 2-minute warm-up, 340 MB at the end, slope 1.09 MB/min (95% CI
 * 0.83-1.36), 45,024 rounds; with it, two runs: 279 -> 300 MB, 0.67 MB/min (0.33-1.01), 46,794 rounds, and 268 ->
 * 286 MB, 0.37 MB/min (0.03-0.71), 43,489 rounds. With it the main heap stayed at 14-17 MB; what still moves is
 * V8's own pages, which rose and fell by about 20 MB over roughly 15 minutes.
 */
export const SERVER_ENV = { MALLOC_MMAP_THRESHOLD_: '131072' } as const;

/**
 * `env` without SERVER_ENV's variables, for the processes the server starts (local agents): they allocate and
 * free large tensors every step, where a fresh mapping per block costs page faults, and the setting was measured
 * on the server only.
 */
export function withoutServerEnv<Env extends Readonly<Record<string, string | undefined>>>(env: Env): Env {
  const out: Record<string, string | undefined> = { ...env };
  for (const name of Object.keys(SERVER_ENV)) delete out[name];
  return out as Env;
}

/** The SERVER_ENV variables this process was started without or with another value (empty when it has them). */
export function missingServerEnv(env: Readonly<Record<string, string | undefined>> = process.env): string[] {
  return Object.entries(SERVER_ENV)
    .filter(([name, value]) => env[name] !== value)
    .map(([name, value]) => `${name}=${value}`);
}

/** The flags this process was started without (empty when it has them all). */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return SERVER_NODE_FLAGS.filter((flag) => !execArgv.includes(flag));
}
