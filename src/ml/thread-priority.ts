// Background threads yield the cores: the coordinator's evaluator and auditor run at a higher nice value than the
// event loop and the aggregator. Both do work nobody waits for (a test-set evaluation every few rounds, the
// recomputation of audited updates), in bursts of 0.1-0.5 s of tfjs compute that, at the same priority, compete for
// a core with the event loop just as requests and updates arrive. What it changed is measured in README (API, reads
// while training): nothing the API benchmark resolves on a quiet 2-core box, so it is off unless asked for
// (HYPERGPU_BACKGROUND_NICE): on a box shared with agents audits would only fall further behind. On Linux a nice
// value is per thread, so only this thread (and the threads it starts after this call, such as tfjs's pool) is
// lowered.
import { readlinkSync } from 'node:fs';
import os from 'node:os';

/** The highest nice value (lowest priority) Linux allows. */
export const MAX_NICENESS = 19;

/**
 * Raises the calling thread's nice value to `niceness` (never lowers it: an operator who started the whole process
 * at a lower priority keeps it). Returns what it did, for the worker's log, or why it did nothing.
 */
export function lowerThreadPriority(niceness: number): string {
  if (!Number.isInteger(niceness) || niceness < 0 || niceness > MAX_NICENESS) return `nice ${String(niceness)} is not an integer from 0 to ${MAX_NICENESS}; priority unchanged`;
  if (niceness === 0) return 'running at the process priority (background nice 0)';
  if (process.platform !== 'linux') return `nice values are per process on ${process.platform}; priority unchanged`;
  try {
    // /proc/thread-self -> "<pid>/task/<tid>": the kernel's id of this thread, which setpriority takes.
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    const current = os.getPriority(tid);
    if (current >= niceness) return `running at nice ${current}`;
    os.setPriority(tid, niceness);
    return `running at nice ${niceness} (background: the event loop and the aggregator get the cores first)`;
  } catch (error) {
    return `could not lower this thread's priority (${error instanceof Error ? error.message : String(error)}); priority unchanged`;
  }
}
