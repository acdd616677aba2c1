// The V8 heap flags the coordinator runs with: `npm start` and `npm run dev` pass them (package.json), and so do
// the tests and the benchmarks that start the server (tests/support/server-process.ts, bench/lib/procs.ts).
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

/** The flags this process was started without (empty when it has them all). */
export function missingNodeFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return SERVER_NODE_FLAGS.filter((flag) => !execArgv.includes(flag));
}
