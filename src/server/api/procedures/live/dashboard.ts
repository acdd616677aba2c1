// Live dashboard feed: one snapshot, then every coordinator event as it happens. No polling anywhere.
import { liveMessage, type LiveMessage } from '../../dto';
import { defineSubscription } from '../../procedure';
import type { CoordinatorEvent } from '../../../core/events';

/** Events a slow client has not taken yet are capped; past this the oldest are dropped. */
const MAX_BUFFERED = 1000;

export const dashboard = defineSubscription({
  input: null,
  output: liveMessage,
  async *resolve({ ctx, signal }): AsyncGenerator<LiveMessage> {
    const queue: CoordinatorEvent[] = [];
    let wake: (() => void) | null = null;
    const unsubscribe = ctx.control.events.subscribe((event) => {
      queue.push(event);
      if (queue.length > MAX_BUFFERED) queue.splice(0, queue.length - MAX_BUFFERED);
      wake?.();
    });
    const aborted = new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve(), { once: true }));
    try {
      yield { type: 'snapshot', snapshot: ctx.control.dashboard() };
      while (!signal?.aborted) {
        if (queue.length === 0) {
          await Promise.race([new Promise<void>((resolve) => (wake = resolve)), aborted]);
          wake = null;
          continue;
        }
        yield queue.shift()!;
      }
    } finally {
      unsubscribe();
    }
  },
});
