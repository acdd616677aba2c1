// Picks up a session that was running or paused when the coordinator last stopped, however it stopped.
// The model is rebuilt exactly: the latest checkpoint, then every journaled update the ledger records as
// applied after it, in order. The data cursor comes from the last recorded round, credit from the ledger.
import { creditsFrom, closedEpochOf } from '../core/engine/accounting';
import type { DurableSession, NodeCredit } from '../core/engine/committed';
import { strategyFor } from '../core/engine/strategy';
import type { CheckpointStore, TrainingRepository, UpdateJournal } from '../core/ports';
import type { MetricPoint, SessionSnapshot } from '../core/types';
import type { LoadedModel, ModelStore } from './model-store';

export interface Recovered {
  session: DurableSession;
  snapshot: SessionSnapshot;
  credits: Map<number, NodeCredit>;
  recent: MetricPoint[];
  model: LoadedModel;
  how: string;
  detail: Record<string, number>;
}

export interface RecoveryDeps {
  repo: TrainingRepository;
  checkpoints: CheckpointStore;
  journal: UpdateJournal;
  model: ModelStore;
  describeDataset(id: string): Promise<{ trainSize: number }>;
}

export type RecoveryResult = { recovered: Recovered } | { failed: SessionSnapshot; message: string } | null;

export async function recoverSession(deps: RecoveryDeps, recentLimit: number): Promise<RecoveryResult> {
  const saved = await deps.repo.findResumableSession();
  if (!saved) return null;
  const config = saved.config;
  const { trainSize } = await deps.describeDataset(config.dataset);
  const paramCount = deps.model.paramCount(config.model);
  const strategy = strategyFor(config);
  const checkpoint = await deps.repo.latestCheckpoint(saved.id);
  let model: LoadedModel;
  if (checkpoint) {
    const payload = await deps.checkpoints.read(checkpoint.path, checkpoint.sha256);
    model = { sessionId: saved.id, modelVersion: payload.modelVersion, params: payload.params, optimizer: { slots: payload.optimizerState, step: payload.optimizerStep } };
  } else {
    deps.model.init(saved.id, config);
    model = deps.model.model!;
  }
  const fromVersion = model.modelVersion;
  // Entries past the ledger's model version were journaled by a round whose transaction never committed.
  const entries = (await deps.journal.read(saved.id, fromVersion)).filter((e) => e.modelVersion <= saved.modelVersion);
  for (const entry of entries) {
    if (entry.modelVersion !== model.modelVersion + 1) break;
    strategy.applyAggregate(model.optimizer, model.params, entry.update);
    model.modelVersion = entry.modelVersion;
  }
  if (model.modelVersion !== saved.modelVersion) {
    const message = `cannot rebuild model version ${saved.modelVersion} exactly: checkpoint at version ${fromVersion} and the journal reaches only version ${model.modelVersion}`;
    return { failed: saved, message };
  }
  const lastRound = await deps.repo.lastRound(saved.id);
  const cursor = lastRound ? structuredClone(lastRound.cursor) : { epoch: 0, position: 0, pending: [] };
  const how = `${checkpoint ? `checkpoint at round ${checkpoint.round}` : 'the initial model'} + ${entries.length} journaled update(s)`;
  const session: DurableSession = {
    id: saved.id,
    config,
    trainSize,
    paramCount,
    startedAt: saved.startedAt,
    state: saved.state,
    message: saved.message,
    endedAt: saved.endedAt,
    round: saved.round,
    modelVersion: saved.modelVersion,
    epoch: saved.epoch,
    totalSamples: saved.totalSamples,
    cursor,
    closedEpoch: closedEpochOf(cursor, trainSize),
  };
  const recent = (await deps.repo.listMetrics(saved.id, recentLimit)).sort((a, b) => a.round - b.round);
  return {
    recovered: {
      session,
      snapshot: saved,
      credits: creditsFrom(await deps.repo.listContributions(saved.id)),
      recent,
      model,
      how,
      detail: { checkpointRound: checkpoint?.round ?? 0, replayed: entries.length, modelVersion: model.modelVersion },
    },
  };
}
