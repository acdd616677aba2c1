// How the FedAvg paper's client settings (McMahan et al. 2017: K clients holding n/K samples each, E local epochs of
// minibatch B per round) map onto a HyperGPU session (localSteps H, batchSize per node). Pure: no I/O, unit-tested.
//
// The paper's client k runs u = E * n_k / B local SGD steps per round over its own n_k samples. A HyperGPU node has
// no fixed shard: each round the coordinator hands it the next H x batchSize samples of a seeded permutation of the
// training set (IID by construction). So a node plays one paper client of share n_k when H x B = E x n_k:
//   E = 1: exact in what a round computes (one pass, u steps of B, over n_k IID samples); the samples are fresh
//          each round rather than the same client's own n_k again (the paper's client revisits its share only
//          when it is sampled again, every 1/C rounds on average with C = 0.1).
//   E > 1: the same number of steps (u = E n_k / B) over E x n_k fresh samples rather than E passes over n_k.
//   B = infinity (FedSGD): one step on the gradient of the whole share, i.e. localSteps 1 with batchSize n_k; the
//          session's (server) optimizer applies the mean gradient.

/** The paper's MNIST setting: 60,000 training images over K = 100 clients, 600 each (IID). */
export const PAPER_CLIENT_SHARE = 600;

/** Table 1 / Table 2 of the paper: rounds to the target with C = 0.1, IID. */
export const PAPER_ROUNDS = {
  mlp2nn: { target: 0.97, fedsgd: 1474, fedavgE1B10: 87 },
  cnn: { target: 0.99, fedsgd: 626, fedavgE5B10: 20 },
} as const;

export interface ClientSetting {
  /** Local epochs per round (E); ignored for FedSGD. */
  epochs: number;
  /** Local minibatch (B); null is the paper's B = infinity (FedSGD: the whole share in one batch). */
  batch: number | null;
  /** Samples a client holds (n_k). */
  share: number;
}

export interface SessionMapping {
  /** Session setting localSteps (H): 1 means synchronous gradient rounds. */
  localSteps: number;
  /** Session setting batchSize: samples per node per local step. */
  batchSize: number;
  /** Samples one node trains on per round (H x batchSize). */
  samplesPerNodeRound: number;
}

/** H and batchSize that make one node compute what one paper client computes in a round. */
export function mapClientSetting({ epochs, batch, share }: ClientSetting): SessionMapping {
  if (!Number.isInteger(share) || share < 1) throw new Error(`share must be a positive integer, got ${share}`);
  if (batch === null) return { localSteps: 1, batchSize: share, samplesPerNodeRound: share };
  if (!Number.isInteger(batch) || batch < 1) throw new Error(`batch must be a positive integer or null (FedSGD), got ${batch}`);
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error(`epochs must be a positive integer, got ${epochs}`);
  if (share % batch !== 0) throw new Error(`share ${share} is not a whole number of batches of ${batch}: one epoch would not be a whole number of steps`);
  const localSteps = (epochs * share) / batch;
  return { localSteps, batchSize: batch, samplesPerNodeRound: localSteps * batch };
}

/** One evaluated round of a session's metric history. */
export interface EvaluatedRound {
  round: number;
  /** When the round committed (ms since the epoch). */
  at: number;
  testAccuracy: number | null;
}

/** The first evaluated round whose test accuracy reached `target`, or null when none did. */
export function firstRoundAtTarget(history: readonly EvaluatedRound[], target: number): EvaluatedRound | null {
  let best: EvaluatedRound | null = null;
  for (const point of history) {
    if (point.testAccuracy === null || point.testAccuracy < target) continue;
    if (!best || point.round < best.round) best = point;
  }
  return best;
}
