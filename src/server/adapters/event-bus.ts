// In-process publish/subscribe for coordinator events. Subscribers are tRPC subscriptions and loggers;
// a slow subscriber must never slow the coordinator, so delivery is synchronous and cheap and each
// subscriber buffers on its own side (see api/routers/live.ts).
import type { CoordinatorEvent } from '../core/events';
import type { EventPublisher } from '../core/ports';

export type Listener = (event: CoordinatorEvent) => void;

export class EventBus implements EventPublisher {
  private readonly listeners = new Set<Listener>();

  publish(event: CoordinatorEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A broken subscriber is its own problem; the coordinator carries on.
      }
    }
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get size(): number {
    return this.listeners.size;
  }
}
