// Shapes shared by the chaos harness, its scenarios and its report.
import type { Detection, LedgerRecheck, RunRecord } from './analysis';
import type { LedgerResponse } from './api';
import type { ChaosCluster, ClusterConfig } from './cluster';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** Reported, never fails the scenario (e.g. a measurement whose precision is too poor to judge). */
  informational?: boolean;
}

export interface BaselineResult {
  config: Pick<ClusterConfig, 'agents' | 'seed' | 'maxSamples' | 'batchSize'>;
  ok: boolean;
  error: string | null;
  state: string;
  accuracy: number | null;
  rounds: number;
  appliedRounds: number;
  totalSamples: number;
  medianRoundMs: number | null;
  p90RoundMs: number | null;
  /** From the aligned start to the end of the session. */
  trainingMs: number;
  /** The whole run, start-up included. */
  durationMs: number;
  ledgerOk: boolean | null;
}

export interface ScenarioContext {
  cluster: ChaosCluster;
  baseline: BaselineResult;
  check(name: string, ok: boolean, detail: string, informational?: boolean): void;
  note(text: string): void;
  metric(name: string, value: number | string | boolean | null): void;
  /** The metrics recorded so far. */
  readonly metrics: Readonly<Record<string, number | string | boolean | null>>;
  log(line: string): void;
}

export interface ScenarioDefinition {
  name: string;
  description: string;
  /** Hard limit for the whole scenario, start-up included (default 150 s). */
  timeoutMs?: number;
  /** Changes to the cluster configuration (the agent count stays the baseline's). */
  configure?(config: ClusterConfig): ClusterConfig;
  /** Injects the faults; the harness then waits for the session to end and collects the records. */
  run(ctx: ScenarioContext): Promise<void>;
  /** Scenario-specific checks on the collected records. */
  analyze?(ctx: ScenarioContext, run: RunRecord): void;
}

export interface ScenarioResult {
  name: string;
  description: string;
  passed: boolean;
  error: string | null;
  durationMs: number;
  state: string | null;
  sessionId: number | null;
  rounds: number | null;
  appliedRounds: number | null;
  modelVersion: number | null;
  totalSamples: number | null;
  accuracy: number | null;
  baselineAccuracy: number | null;
  /** (accuracy - baseline) in percentage points. */
  deltaPoints: number | null;
  failuresDetected: number | null;
  detections: Detection[];
  updates: { accepted: number | null; rejectedByReason: Record<string, number> };
  ledger: (Pick<LedgerResponse, 'ok' | 'problems'> & Record<string, unknown>) | null;
  ledgerRecheck: LedgerRecheck | null;
  checks: Check[];
  notes: string[];
  metrics: Record<string, number | string | boolean | null>;
  /** Output of the processes, when the scenario failed. */
  diagnostics?: string;
}
