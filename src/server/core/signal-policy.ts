// What a stop signal (SIGINT, SIGTERM) means, given the ones before it. Ctrl-C in a terminal signals the whole
// process group, and a wrapper that relays signals (npm, tsx) sends its child another copy moments later: that
// copy is the same request, not an order to die. A signal long after the first (the shutdown is stuck) or a
// third one forces the exit. Pure: the caller passes the clock.

export type SignalDecision = 'shutdown' | 'duplicate' | 'force';

export interface SignalPolicy {
  /** Decides what a signal arriving at `now` (epoch ms) asks for. */
  receive(now: number): SignalDecision;
}

/** After the first signal, another within `graceMs` is a duplicate, unless it is the `forceAt`-th. */
export function createSignalPolicy(graceMs = 10_000, forceAt = 3): SignalPolicy {
  let first: number | null = null;
  let count = 0;
  return {
    receive(now) {
      count += 1;
      if (first === null) {
        first = now;
        return 'shutdown';
      }
      return count >= forceAt || now - first > graceMs ? 'force' : 'duplicate';
    },
  };
}
