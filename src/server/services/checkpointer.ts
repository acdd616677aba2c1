// Checkpoints: one at a time, from a copy of the model, so training goes on while the file is written.
// An outbox consumer (every `checkpointEvery` committed rounds) and the engine's final and shutdown
// checkpoints share it. Retention, once a checkpoint's file and row are durable (the blob store syncs the file,
// SQLite runs synchronous=FULL): the last `keep` checkpoints stay, older ones (rows, then files) go, and the
// journal is compacted only up to the OLDEST kept checkpoint, so recovery can fall back to any kept checkpoint
// when a newer one is damaged and still replay every update after it.
import type { OutboxRecord } from '../core/engine/committed';
import type { CheckpointStore, Clock, TrainingRepository, UpdateJournal } from '../core/ports';
import type { CheckpointRecord, SessionConfig } from '../core/types';
import type { ModelStore } from './model-store';
import type { OutboxConsumer } from './outbox';

export interface CheckpointerDeps {
  repo: TrainingRepository;
  checkpoints: CheckpointStore;
  journal: UpdateJournal;
  model: ModelStore;
  clock: Clock;
  /** The session's config and durable round as the engine knows them now. */
  session(sessionId: number): { config: SessionConfig; round: number } | null;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /** Checkpoints kept per session (HYPERGPU_KEEP_CHECKPOINTS); at least 1. Default 3. */
  keep?: number;
}

export const DEFAULT_KEEP_CHECKPOINTS = 3;

export class Checkpointer implements OutboxConsumer {
  readonly name = 'checkpointer';
  private chain: Promise<unknown> = Promise.resolve();
  private readonly lastRound = new Map<number, number>();
  /** The version each session's journal was last compacted to in this process (unknown after a restart). */
  private readonly compactedTo = new Map<number, number>();

  constructor(private readonly deps: CheckpointerDeps) {}

  async handle(record: OutboxRecord): Promise<void> {
    const event = record.event;
    if (event.kind !== 'round-committed') return;
    const session = this.deps.session(event.sessionId);
    if (!session) return;
    const last = await this.lastCheckpointRound(event.sessionId);
    if (event.round - last >= session.config.checkpointEvery) await this.write(event.sessionId);
  }

  /** Writes a checkpoint of the model as it is now, unless one at this round exists. */
  write(sessionId: number): Promise<void> {
    const run = this.chain.then(() => this.writeNow(sessionId));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async lastCheckpointRound(sessionId: number): Promise<number> {
    let last = this.lastRound.get(sessionId);
    if (last === undefined) {
      last = (await this.deps.repo.latestCheckpoint(sessionId))?.round ?? 0;
      this.lastRound.set(sessionId, last);
    }
    return last;
  }

  private async writeNow(sessionId: number): Promise<void> {
    const session = this.deps.session(sessionId);
    const model = this.deps.model.model;
    if (!session || !model || model.sessionId !== sessionId) return;
    const round = session.round;
    if ((await this.lastCheckpointRound(sessionId)) === round && round > 0) return;
    const copy = this.deps.model.snapshot(sessionId);
    this.lastRound.set(sessionId, round);
    const written = await this.deps.checkpoints.write({
      sessionId,
      round,
      modelVersion: copy.modelVersion,
      params: copy.params,
      optimizerState: copy.optimizer.slots,
      optimizerStep: copy.optimizer.step,
    });
    const row: CheckpointRecord = { sessionId, round, modelVersion: copy.modelVersion, sha256: written.sha256, path: written.path, bytes: written.bytes, createdAt: this.deps.clock.now() };
    // The file is durable (BlobWriter.commit syncs it before the rename), and the row is once this resolves
    // (synchronous=FULL): only now may anything older go.
    await this.deps.repo.recordCheckpoint(row);
    this.deps.log('info', `checkpoint at round ${round} (model version ${copy.modelVersion}): ${(written.bytes / 1e6).toFixed(2)} MB, sha256 ${written.sha256.slice(0, 12)}…`);
    try {
      await this.retain(sessionId);
    } catch (error) {
      // The checkpoint itself is safe; what was not pruned now is pruned after the next one.
      this.deps.log('warn', `checkpoint retention for session ${sessionId} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /**
   * Keeps the last `keep` checkpoints and the journal entries after the oldest of them; deletes the rest. Order
   * matters for crashes: the journal is compacted first (only entries every kept checkpoint covers go), then
   * the old rows (so recovery never picks a checkpoint whose file is gone), then their files. A crash between
   * the last two leaves an unreferenced file, never a row without its file.
   */
  private async retain(sessionId: number): Promise<void> {
    const keep = Math.max(1, this.deps.keep ?? DEFAULT_KEEP_CHECKPOINTS);
    const all = await this.deps.repo.listCheckpoints(sessionId);
    if (all.length === 0) return;
    const kept = all.slice(-keep);
    const oldest = kept[0];
    const keepFrom = Math.min(...kept.map((c) => c.modelVersion));
    const newest = Math.max(...kept.map((c) => c.modelVersion));
    // Compaction copies every entry it keeps (those after the oldest kept checkpoint: about (keep - 1) x
    // checkpointEvery of them) into a new file, so it runs only once the droppable entries are at least as many
    // as the kept ones: every other checkpoint at keep = 3, and the journal stays under about 2x what it must
    // hold. (A journal of one file per checkpoint interval, dropped whole, would avoid the copy.)
    const compacted = this.compactedTo.get(sessionId);
    if (compacted === undefined || keepFrom - compacted >= newest - keepFrom) {
      await this.deps.journal.compact(sessionId, keepFrom);
      this.compactedTo.set(sessionId, keepFrom);
    }
    if (all.length === kept.length) return;
    const deleted = await this.deps.repo.deleteCheckpointsBefore(sessionId, oldest.round);
    const stillUsed = new Set(kept.map((c) => c.sha256));
    for (const c of deleted) if (!stillUsed.has(c.sha256)) await this.deps.checkpoints.remove(c.path, c.sha256);
    if (deleted.length > 0) this.deps.log('info', `deleted ${deleted.length} checkpoint(s) of session ${sessionId} before round ${oldest.round} (keeping ${kept.length})`);
  }

  /**
   * At start, before any checkpoint is written: deletes checkpoint files no row refers to (a crash between a
   * file's commit and its row, or between retention's row delete and file delete). Temporary files of crashed
   * writes are swept by the blob store itself on its first write.
   */
  async sweep(): Promise<number> {
    const referenced = new Set<string>();
    for (const session of await this.deps.repo.listSessions(1_000_000)) {
      for (const c of await this.deps.repo.listCheckpoints(session.id)) referenced.add(c.sha256);
    }
    let removed = 0;
    for (const file of await this.deps.checkpoints.list()) {
      if (referenced.has(file.sha256)) continue;
      if (await this.deps.checkpoints.remove(file.path, file.sha256)) removed += 1;
    }
    if (removed > 0) this.deps.log('info', `removed ${removed} checkpoint file(s) no checkpoint row refers to`);
    return removed;
  }

  /** Waits for the checkpoint being written, if any. */
  idle(): Promise<void> {
    return this.chain.then(() => undefined);
  }
}
