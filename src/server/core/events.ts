// Events the coordinator publishes for live views (dashboard subscriptions, logs). Plain data only.
import type { MetricPoint, NodeSnapshot, SessionEvent, SessionSnapshot } from './types';

export interface StatusSnapshot {
  state: 'idle' | 'running' | 'paused' | 'stopped' | 'completed' | 'failed';
  sessionId: number | null;
  round: number;
  modelVersion: number;
  nodes: { total: number; active: number; training: number; failed: number };
  session: SessionSnapshot | null;
  startedAt: number;
  now: number;
}

export interface LogLine {
  at: number;
  level: 'info' | 'warn' | 'error';
  message: string;
}

export type CoordinatorEvent =
  | { type: 'status'; status: StatusSnapshot }
  | { type: 'metric'; sessionId: number; metric: MetricPoint }
  | { type: 'node'; node: NodeSnapshot }
  | { type: 'log'; line: LogLine }
  | { type: 'timeline'; event: SessionEvent };

/** The live view a dashboard starts from before it applies events. */
export interface DashboardSnapshot {
  status: StatusSnapshot;
  nodes: NodeSnapshot[];
  metrics: MetricPoint[];
  logs: LogLine[];
  /** The current session's timeline (joins, failures, restarts...), oldest first. */
  timeline: SessionEvent[];
}

/** What the live dashboard subscription streams: one snapshot, then every event as it happens. */
export type LiveMessage = { type: 'snapshot'; snapshot: DashboardSnapshot } | CoordinatorEvent;
