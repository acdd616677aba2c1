// The live view: what a dashboard starts from (recent metrics, logs, the session timeline) and the events
// that keep it current. A read model: fed by the runner's effects and by the outbox, never read back by the
// engine. Bounded: the database keeps everything, memory keeps the recent part.
import type { CoordinatorEvent, LogLine } from '../core/events';
import type { EventPublisher } from '../core/ports';
import type { MetricPoint, SessionEvent } from '../core/types';
import { MetricHistory } from './metric-history';

const LOG_LIMIT = 200;
export const TIMELINE_LIMIT = 500;

export class LiveView {
  /** The current session's recent metric points (see metric-history.ts for why columns). */
  private readonly history: MetricHistory;
  private readonly logLines: LogLine[] = [];
  private timelineEvents: SessionEvent[] = [];
  sessionId: number | null = null;

  constructor(
    private readonly events: EventPublisher,
    historyLimit: number,
  ) {
    this.history = new MetricHistory(historyLimit);
  }

  /** A session became current: start from what the database holds of it. */
  reset(sessionId: number, history: MetricPoint[] = [], timeline: SessionEvent[] = []): void {
    this.sessionId = sessionId;
    this.history.clear();
    for (const m of history.slice(-this.history.capacity)) this.history.push(m);
    this.timelineEvents = timeline.slice(-TIMELINE_LIMIT);
  }

  publish(event: CoordinatorEvent): void {
    this.events.publish(event);
  }

  addMetric(sessionId: number, metric: MetricPoint): void {
    if (sessionId !== this.sessionId) return;
    if (!this.history.push(metric)) return; // redelivered by the outbox: already here
    this.publish({ type: 'metric', sessionId, metric });
  }

  addEvaluation(sessionId: number, round: number, testLoss: number, testAccuracy: number): void {
    if (sessionId !== this.sessionId) return;
    const metric = this.history.setEvaluation(round, testLoss, testAccuracy);
    if (metric) this.publish({ type: 'metric', sessionId, metric });
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
    return this.history.last(limit);
  }

  logs(): LogLine[] {
    return this.logLines.slice();
  }

  timeline(): SessionEvent[] {
    return this.timelineEvents.slice();
  }
}
