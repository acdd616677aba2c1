// Session set-up on the agent: for the session descriptor the coordinator announces, load the dataset and
// build the model's trainer, check both against the descriptor, then say 'ready'. Datasets are loaded once
// per process and shared; a new session on the same model and dataset keeps the trainer it has. The descriptor
// names a dataset by id; only ids configured on this machine (--dataset name=path, or built in) are loaded.
import type { Tf } from '../ml/backend';
import type { Dataset } from '../ml/datasets';
import { DatasetRegistry } from '../ml/datasets/registry';
import { assertDatasetFitsModel, modelSpec, type ModelSpec } from '../ml/models';
import { Trainer } from '../ml/trainer';
import type { SessionDescriptor } from '../protocol/messages';

/** What a session needs to train: the descriptor it was prepared for, the data, the model and its trainer. */
export interface Prepared {
  session: SessionDescriptor;
  dataset: Dataset;
  spec: ModelSpec;
  trainer: Trainer;
}

export class SessionSetup {
  private prepared: Prepared | null = null;
  private preparing: Promise<Prepared> | null = null;
  private readonly datasets = new Map<string, Promise<Dataset>>();

  constructor(
    private readonly tf: Tf,
    private readonly log: (line: string) => void,
    private readonly registry: DatasetRegistry = new DatasetRegistry(),
  ) {}

  /** The session the agent is ready to train for, if any. */
  current(): Prepared | null {
    return this.prepared;
  }

  /** Measures this machine's speed (samples/s) on a model, so the first registration reports something real. */
  async calibrate(datasetId = 'mnist', model: 'mlp' | 'cnn' | 'mlp2nn' = 'mlp'): Promise<number> {
    const dataset = await this.dataset(datasetId);
    const trainer = new Trainer(this.tf, modelSpec(model));
    try {
      return trainer.benchmark(dataset, 256);
    } finally {
      trainer.dispose();
    }
  }

  /**
   * Gets ready for the announced session (null: no session, nothing to do) and calls onReady once prepared,
   * unless another announcement came in meanwhile. Failures are logged: the agent stays connected and idle.
   */
  join(session: SessionDescriptor | null, onReady: (sessionId: number) => void): void {
    if (!session) return;
    const preparing = this.prepare(session);
    this.preparing = preparing;
    preparing
      .then(() => {
        if (this.preparing === preparing) onReady(session.sessionId);
      })
      .catch((error) => this.log(`cannot join session ${session.sessionId}: ${error instanceof Error ? error.message : String(error)}`));
  }

  dispose(): void {
    this.prepared?.trainer.dispose();
    this.prepared = null;
  }

  private async prepare(session: SessionDescriptor): Promise<Prepared> {
    const current = this.prepared;
    if (current && current.session.model === session.model && current.session.dataset === session.dataset) {
      this.prepared = { ...current, session };
      return this.prepared;
    }
    if (!this.registry.has(session.dataset)) {
      const id = session.dataset;
      throw new Error(
        `the coordinator asked for dataset '${id}', which is not configured on this machine ` +
          `(configured: ${this.registry.ids().join(', ')}); start the agent with --dataset ${id}=/path/to/folder ` +
          `(or HYPERGPU_DATASETS=${id}=/path/to/folder) to train it. Not training this session`,
      );
    }
    const dataset = await this.dataset(session.dataset);
    const spec = modelSpec(session.model);
    if (spec.paramCount !== session.paramCount) {
      throw new Error(`model ${session.model} has ${spec.paramCount} parameters here but ${session.paramCount} at the coordinator: agent and coordinator versions differ`);
    }
    assertDatasetFitsModel(spec, dataset);
    this.prepared?.trainer.dispose();
    this.prepared = { session, dataset, spec, trainer: new Trainer(this.tf, spec) };
    this.log(`ready for session ${session.sessionId}: ${session.model} (${spec.paramCount.toLocaleString('en-US')} parameters) on ${session.dataset} (${dataset.trainSize.toLocaleString('en-US')} training samples)`);
    return this.prepared;
  }

  private dataset(id: string): Promise<Dataset> {
    let pending = this.datasets.get(id);
    if (!pending) {
      pending = this.registry.load(id);
      this.datasets.set(id, pending);
      pending.catch(() => this.datasets.delete(id));
    }
    return pending;
  }
}
