// The `npm start` command line: flags and environment into one checked configuration. A flag is no way around
// the API's bounds: the session settings go through the same schema as POST /api/training/start.
import { parseArgs } from 'node:util';
import { DATASET_ID_PATTERN } from '../protocol/dataset-id';
import { parseDatasetSpecs } from '../ml/datasets/registry';
import { readEnv } from './env';
import { startTrainingInput } from './api/inputs';
import { DEFAULT_SESSION_CONFIG, type SessionConfigInput } from './core/session-config';
import { BYZANTINE_MODES, type AgentProfile, type ByzantineMode } from './local-agents';
import type { ChainOptions } from './chain-setup';
import { DEFAULT_REWARD_POLICY, type RewardPolicy } from './core/rewards/policy';

export const USAGE = `Usage: npm start -- [options]

  --port N               port for dashboard, API and agents (default 3000, or PORT)
  --host H               interface to listen on (default 127.0.0.1, or HOST); 0.0.0.0 serves remote agents
                         (see "Security" in README.md)
  --public-host NAME     a host name other machines reach this server by (repeatable; or HYPERGPU_PUBLIC_HOSTS)
  --reset-admin-token    replace the stored admin token with a new one, printed once
  --nodes N              local agents to spawn (default 4, or HYPERGPU_NODES); 0 for none
  --headless             no dashboard; run one session, print progress and a JSON summary, exit
  --no-dashboard         serve the API and agents only (a coordinator for scripts); keeps running
  --target-accuracy X    end the session once test accuracy reaches X (0-1)
  --max-rounds N         end the session after N rounds
  --model mlp|cnn|mlp2nn model to train (default mlp; mlp2nn: the FedAvg paper's 784-200-200-10)
  --dataset NAME=DIR     serve the folder DIR (IDX or CSV files) as dataset NAME (repeatable; also
                         HYPERGPU_DATASETS=name=dir,name2=dir2); mnist is built in. Local agents get the same
  --dataset NAME         the default session's dataset (default mnist); the API names datasets by id too
  --optimizer sgd|adam   server optimizer (default adam)
  --lr X                 learning rate
  --batch-size N         samples per node per round (default 128)
  --eval-every N         evaluate on the test set every N rounds (default 10)
  --checkpoint-every N   write a checkpoint every N rounds (default 50)
  --max-samples N        end the session once N samples were applied (a sample budget)
  --seed N               seed for initial weights and data order (default 42)
  --aggregation RULE     mean (default), median, trimmed-mean:FRACTION (e.g. trimmed-mean:0.1) or
                         multi-krum:F (tolerates F bad updates a round)
  --local-steps H|auto   local steps per round (DiLoCo/FedAvg; 1 = synchronous gradient rounds, the default)
  --overlap              with local steps: agents train their next shard while the update and the next model travel
  --outer-lr X           outer learning rate of local steps (SGD with Nesterov momentum 0.9; default 0.7)
  --codec NAME           how agents send updates: float32 (default), fp16, int8, top-k or auto (per node)
  --top-k FRACTION       top-k: the share of values sent (default 0.01)
  --data-dir DIR         database and checkpoints (default ./data, or HYPERGPU_DATA_DIR)
  --fresh                start a new session even if an interrupted one can be resumed
  --no-session           start no session (use the dashboard or POST /api/training/start)
  --timeout S            headless: give up after S seconds (default 900)
  --dev                  serve the dashboard with Next's dev server (hot reload)
  --profile uniform|mixed  local agents all alike (default), or mixed: full, half and quarter speed with
                         0, 40 and 120 ms latency and unlimited, 50 and 10 MB/s upload, in turn; mixed also
                         sizes work to speed (--global-batch, default batch size x nodes)
  --byzantine K          start K more local agents that send bad updates (sign-flip, scale, random in turn)
  --byzantine-mode MODE  every Byzantine agent sends MODE: sign-flip, scale, random or blow-up (30x: clipped)
  --global-batch N       samples per optimizer step, shared among the nodes in proportion to their measured
                         speed (default: --batch-size per node)
  --clip-factor X        clip each update to X times the round's median update norm (default: none; 3 in an
                         open pool)
  --open-pool            admit agents without a join token (or HYPERGPU_OPEN_POOL=1); trusted networks only
  --tls-cert FILE        serve HTTPS and wss:// with this PEM certificate (or HYPERGPU_TLS_CERT); needs --tls-key
  --tls-key FILE         the certificate's PEM private key (or HYPERGPU_TLS_KEY)
  --no-chain             settle nowhere (or HYPERGPU_CHAIN=off); default: a local anvil, or the network in
                         HYPERGPU_CHAIN_RPC_URL (README: Rewards)

  New agents need a join token (POST /api/join-tokens) unless the pool is open; see README, Security.
`;

export interface Cli {
  port: number;
  host: string;
  nodes: number;
  headless: boolean;
  dashboard: boolean;
  dev: boolean;
  fresh: boolean;
  session: boolean;
  timeoutS: number;
  dataDir: string;
  publicHosts: string[];
  resetAdminToken: boolean;
  /** Registered datasets: name -> absolute folder. */
  datasets: Map<string, string>;
  openPool: boolean;
  tls: { certFile: string; keyFile: string } | null;
  chain: ChainOptions;
  rewardPolicy: RewardPolicy;
  config: SessionConfigInput;
  profile: AgentProfile;
  byzantine: number;
  byzantineMode: ByzantineMode | undefined;
}

export function parseCli(argv: string[]): Cli {
  const env = readEnv();
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      'public-host': { type: 'string', multiple: true },
      'reset-admin-token': { type: 'boolean' },
      nodes: { type: 'string' },
      headless: { type: 'boolean' },
      'no-dashboard': { type: 'boolean' },
      'target-accuracy': { type: 'string' },
      'max-rounds': { type: 'string' },
      rounds: { type: 'string' },
      model: { type: 'string' },
      dataset: { type: 'string', multiple: true },
      optimizer: { type: 'string' },
      lr: { type: 'string' },
      'batch-size': { type: 'string' },
      aggregation: { type: 'string' },
      'local-steps': { type: 'string' },
      overlap: { type: 'boolean' },
      'outer-lr': { type: 'string' },
      codec: { type: 'string' },
      'top-k': { type: 'string' },
      'eval-every': { type: 'string' },
      'checkpoint-every': { type: 'string' },
      'max-samples': { type: 'string' },
      seed: { type: 'string' },
      'data-dir': { type: 'string' },
      fresh: { type: 'boolean' },
      'no-session': { type: 'boolean' },
      timeout: { type: 'string' },
      dev: { type: 'boolean' },
      'open-pool': { type: 'boolean' },
      profile: { type: 'string' },
      byzantine: { type: 'string' },
      'byzantine-mode': { type: 'string' },
      'global-batch': { type: 'string' },
      'clip-factor': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'no-chain': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const num = (name: string, raw: string | undefined, check: (n: number) => boolean): number | undefined => {
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || !check(n)) throw new Error(`--${name} ${raw} is not valid`);
    return n;
  };
  const config: SessionConfigInput = {};
  const target = num('target-accuracy', values['target-accuracy'], (n) => n > 0 && n <= 1);
  if (target !== undefined) config.targetAccuracy = target;
  const rounds = num('max-rounds', values['max-rounds'] ?? values.rounds, (n) => Number.isInteger(n) && n > 0);
  if (rounds !== undefined) config.maxRounds = rounds;
  if (values.model) {
    if (values.model !== 'mlp' && values.model !== 'cnn' && values.model !== 'mlp2nn') throw new Error(`--model must be mlp, cnn or mlp2nn (got ${values.model})`);
    config.model = values.model;
  }
  const datasetFlags = values.dataset ?? [];
  // A flag names the same dataset as the environment: the flag wins.
  const datasets = new Map([...parseDatasetSpecs([env.HYPERGPU_DATASETS ?? '']), ...parseDatasetSpecs(datasetFlags.filter((d) => d.includes('=')))]);
  for (const id of datasetFlags.filter((d) => !d.includes('='))) {
    if (!DATASET_ID_PATTERN.test(id)) throw new Error(`--dataset must be NAME=DIR (register) or a dataset id (got ${id})`);
    if (id !== 'mnist' && !datasets.has(id)) throw new Error(`--dataset ${id}: no such dataset; register it with --dataset ${id}=DIR`);
    config.dataset = id;
  }
  const optimizer: NonNullable<SessionConfigInput['optimizer']> = {};
  if (values.optimizer) {
    if (values.optimizer !== 'sgd' && values.optimizer !== 'adam') throw new Error(`--optimizer must be sgd or adam (got ${values.optimizer})`);
    optimizer.name = values.optimizer;
  }
  const lr = num('lr', values.lr, (n) => n > 0 && n <= 10);
  if (lr !== undefined) optimizer.learningRate = lr;
  if (Object.keys(optimizer).length) config.optimizer = optimizer;
  const batch = num('batch-size', values['batch-size'], (n) => Number.isInteger(n) && n > 0);
  if (batch !== undefined) config.batchSize = batch;
  const evalEvery = num('eval-every', values['eval-every'], (n) => Number.isInteger(n) && n > 0);
  if (evalEvery !== undefined) config.evalEvery = evalEvery;
  const checkpointEvery = num('checkpoint-every', values['checkpoint-every'], (n) => Number.isInteger(n) && n > 0);
  if (checkpointEvery !== undefined) config.checkpointEvery = checkpointEvery;
  const maxSamples = num('max-samples', values['max-samples'], (n) => Number.isInteger(n) && n > 0);
  if (maxSamples !== undefined) config.maxSamples = maxSamples;
  const seed = num('seed', values.seed, (n) => Number.isInteger(n) && n >= 0 && n < 2 ** 31);
  if (seed !== undefined) config.seed = seed;
  if (values.aggregation !== undefined) config.aggregation = parseAggregation(values.aggregation);
  const profile = values.profile ?? 'uniform';
  if (profile !== 'uniform' && profile !== 'mixed') throw new Error(`--profile must be uniform or mixed (got ${profile})`);
  const byzantine = num('byzantine', values.byzantine, (n) => Number.isInteger(n) && n >= 0 && n <= 64) ?? 0;
  const byzantineMode = values['byzantine-mode'];
  if (byzantineMode !== undefined && !BYZANTINE_MODES.includes(byzantineMode as ByzantineMode)) {
    throw new Error(`--byzantine-mode must be one of ${BYZANTINE_MODES.join(', ')} (got ${byzantineMode})`);
  }
  const globalBatch = num('global-batch', values['global-batch'], (n) => Number.isInteger(n) && n > 0);
  if (globalBatch !== undefined) config.globalBatch = globalBatch;
  const clipFactor = num('clip-factor', values['clip-factor'], (n) => n > 0);
  if (clipFactor !== undefined) config.clipFactor = clipFactor;
  const nodes = num('nodes', values.nodes, (n) => Number.isInteger(n) && n >= 0 && n <= 256) ?? env.HYPERGPU_NODES;
  // Mixed machines are what work sizing is for: one step of batch size x honest nodes, shared by speed.
  if (profile === 'mixed' && config.globalBatch === undefined) config.globalBatch = (config.batchSize ?? DEFAULT_SESSION_CONFIG.batchSize) * Math.max(1, nodes);
  const localSteps = values['local-steps'];
  if (localSteps !== undefined) config.localSteps = localSteps === 'auto' ? 'auto' : num('local-steps', localSteps, (n) => Number.isInteger(n) && n >= 1);
  if (values.overlap) {
    if (config.localSteps === undefined || config.localSteps === 1) throw new Error('--overlap needs local steps: --local-steps H (above 1) or auto');
    config.overlap = true;
  }
  const outerLr = num('outer-lr', values['outer-lr'], (n) => n > 0);
  if (outerLr !== undefined) config.outerOptimizer = { learningRate: outerLr, momentum: 0.9 };
  if (values.codec !== undefined) config.codec = values.codec as NonNullable<typeof config.codec>;
  const topK = num('top-k', values['top-k'], (n) => n > 0 && n <= 1);
  if (topK !== undefined) config.topKFraction = topK;
  // The same bounds as POST /api/training/start (api/inputs.ts): a flag is no way around them.
  const checked = startTrainingInput.safeParse(config);
  if (!checked.success) throw new Error(checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const certFile = values['tls-cert'] ?? env.HYPERGPU_TLS_CERT;
  const keyFile = values['tls-key'] ?? env.HYPERGPU_TLS_KEY;
  if (Boolean(certFile) !== Boolean(keyFile)) throw new Error('--tls-cert and --tls-key go together (or HYPERGPU_TLS_CERT and HYPERGPU_TLS_KEY)');
  return {
    chain: chainOptions(env, values['no-chain'] ?? false),
    rewardPolicy: {
      ratePerSample: env.HYPERGPU_REWARD_PER_SAMPLE ? BigInt(env.HYPERGPU_REWARD_PER_SAMPLE) : DEFAULT_REWARD_POLICY.ratePerSample,
      epochBudget: env.HYPERGPU_EPOCH_BUDGET === 'none' ? null : env.HYPERGPU_EPOCH_BUDGET ? BigInt(env.HYPERGPU_EPOCH_BUDGET) : DEFAULT_REWARD_POLICY.epochBudget,
    },
    openPool: values['open-pool'] ?? env.HYPERGPU_OPEN_POOL,
    tls: certFile && keyFile ? { certFile, keyFile } : null,
    port: num('port', values.port, (n) => Number.isInteger(n) && n >= 0 && n < 65536) ?? env.PORT,
    host: values.host ?? env.HOST,
    nodes,
    profile,
    byzantine,
    byzantineMode: byzantineMode as ByzantineMode | undefined,
    headless: values.headless ?? false,
    dashboard: !values.headless && !values['no-dashboard'],
    dev: values.dev ?? false,
    fresh: values.fresh ?? false,
    session: !values['no-session'],
    timeoutS: num('timeout', values.timeout, (n) => n > 0) ?? 900,
    dataDir: values['data-dir'] ?? env.HYPERGPU_DATA_DIR,
    publicHosts: [...env.HYPERGPU_PUBLIC_HOSTS, ...(values['public-host'] ?? [])],
    resetAdminToken: values['reset-admin-token'] ?? false,
    datasets,
    config,
  };
}

/** `--aggregation`: mean, median, trimmed-mean:FRACTION or multi-krum:F (the API's bounds check the numbers). */
function parseAggregation(text: string): NonNullable<SessionConfigInput['aggregation']> {
  const [rule, arg] = text.split(':');
  if (rule === 'mean' || rule === 'median') return { rule };
  if (rule === 'trimmed-mean' && arg !== undefined) return { rule, trimFraction: Number(arg) };
  if (rule === 'multi-krum' && arg !== undefined) return { rule, byzantine: Number(arg) };
  throw new Error(`--aggregation must be mean, median, trimmed-mean:FRACTION or multi-krum:F (got ${text})`);
}

function chainOptions(env: ReturnType<typeof readEnv>, noChain: boolean): ChainOptions {
  if (noChain || env.HYPERGPU_CHAIN === 'off') return { mode: 'off' };
  const fundWei = env.HYPERGPU_CHAIN_FUND ? BigInt(env.HYPERGPU_CHAIN_FUND) : undefined;
  if (!env.HYPERGPU_CHAIN_RPC_URL) return { mode: 'anvil', chainId: env.HYPERGPU_CHAIN_ID, fundWei };
  if (!env.HYPERGPU_DEPLOYER_KEY) throw new Error('HYPERGPU_CHAIN_RPC_URL needs HYPERGPU_DEPLOYER_KEY (the owner key that commits epoch roots)');
  return {
    mode: 'rpc',
    rpcUrl: env.HYPERGPU_CHAIN_RPC_URL,
    chainId: env.HYPERGPU_CHAIN_ID,
    deployerKey: env.HYPERGPU_DEPLOYER_KEY as `0x${string}`,
    contractAddress: env.HYPERGPU_CONTRACT_ADDRESS as `0x${string}` | undefined,
    fundWei,
  };
}
