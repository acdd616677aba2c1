// The live view: what a dashboard starts from (recent metrics, logs, the session timeline) and the events
// that keep it current. A read model: fed by the runner's effects and by the outbox, never read back by the
// engine. Bounded: the database keeps everything, memory keeps the recent part.
import type { CoordinatorEvent, LogLine } from '../core/events';
import type { EventPublisher } from '../core/ports';
import type { MetricPoint, SessionEvent } from '../core/types';

const LOG_LIMIT = 200;
export const TIMELINE_LIMIT = 500;

export class LiveView {
  private history: MetricPoint[] = [];
  private readonly logLines: LogLine[] = [];
  private timelineEvents: SessionEvent[] = [];
  sessionId: number | null = null;

  constructor(
    private readonly events: EventPublisher,
    private readonly historyLimit: number,
  ) {}

  /** A session became current: start from what the database holds of it. */
  reset(sessionId: number, history: MetricPoint[] = [], timeline: SessionEvent[] = []): void {
    this.sessionId = sessionId;
    this.history = history.slice(-this.historyLimit);
    this.timelineEvents = timeline.slice(-TIMELINE_LIMIT);
  }

  publish(event: CoordinatorEvent): void {
    this.events.publish(event);
  }

  addMetric(sessionId: number, metric: MetricPoint): void {
    if (sessionId !== this.sessionId) return;
    const last = this.history.at(-1);
    if (last && last.round >= metric.round) return; // redelivered by the outbox: already here
    this.history.push(metric);
    if (this.history.length > this.historyLimit) this.history.splice(0, this.history.length - this.historyLimit);
    this.publish({ type: 'metric', sessionId, metric });
  }

  addEvaluation(sessionId: number, round: number, testLoss: number, testAccuracy: number): void {
    if (sessionId !== this.sessionId) return;
    const metric = findLast(this.history, (m) => m.round === round);
    if (!metric) return;
    metric.testLoss = testLoss;
    metric.testAccuracy = testAccuracy;
    this.publish({ type: 'metric', sessionId, metric: { ...metric } });
  }

  addLog(line: LogLine): void {
    this.logLines.push(line);
    if (this.logLines.length > LOG_LIMIT) this.logLines.shift();
    this.publish({ type: 'log', line });
  }

  addTimeline(event: SessionEvent): void {
    if (event.sessionId === this.sessionId) {
      this.timelineEvents.push(event);
      if (this.timelineEvents.length > TIMELINE_LIMIT) this.timelineEvents.shift();
    }
    this.publish({ type: 'timeline', event });
  }

  metrics(limit: number): MetricPoint[] {
    return this.history.slice(-limit);
  }

  logs(): LogLine[] {
    return this.logLines.slice();
  }

  timeline(): SessionEvent[] {
    return this.timelineEvents.slice();
  }
}

function findLast<T>(items: T[], predicate: (item: T) => boolean): T | undefined {
  for (let i = items.length - 1; i >= 0; i--) if (predicate(items[i])) return items[i];
  return undefined;
}
