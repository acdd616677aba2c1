// hypergpu agent --coordinator ws://HOST:PORT/agent [--name NAME] [--backend wasm|cpu|tensorflow|tensorflow-gpu]
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DatasetConfigError, parseDatasetSpecs } from '../ml/datasets/registry';
import { NodeAgent } from './agent';
import { BYZANTINE_MODES, describeSimulation, type ByzantineMode, type Simulation } from './simulation';
import { loadWallet, type NodeWallet } from './wallet';

const USAGE = `Usage: hypergpu agent --coordinator ws://HOST:PORT/agent [--name NAME] [--backend NAME]

  --coordinator URL  coordinator's agent endpoint (default ws://127.0.0.1:3000/agent, or HYPERGPU_COORDINATOR)
  --name NAME        stable node name; reconnecting with the same name keeps the node id (default: host-pid)
  --backend NAME     force a TensorFlow.js backend: tensorflow-gpu, tensorflow, wasm or cpu (default: fastest that loads)
  --state-dir DIR    where the node's token is kept (default ~/.hypergpu); the token makes the name this agent's own
  --dataset NAME=DIR a dataset this machine may train on, by the name the coordinator uses (repeatable; also
                     HYPERGPU_DATASETS=name=dir,name2=dir2); mnist is built in. DIR holds IDX or CSV files.
  --join-token T     join token from the operator (or HYPERGPU_JOIN_TOKEN); needed at a name's first registration
                     unless the coordinator runs with an open pool
  --ca FILE          PEM CA certificate to verify a wss:// coordinator with a self-signed certificate (or HYPERGPU_CA)
  --wallet-key-file F  the node's EVM private key (hex), what it is paid to (or HYPERGPU_WALLET_KEY); default: one
                     generated on first run into the state dir (wallet-NAME.key, owner-only). Never logged or sent.
  --payout-address A be paid at A instead of the key's own address (the signed hello authorizes it)
  --no-wallet        join without a wallet (trains, is paid nothing)

Simulation (to watch the coordinator adapt on one machine; npm start -- --profile mixed / --byzantine K use them):
  --simulate-speed F      train at F (0-1] of this machine's real speed, idling after each micro-batch
  --simulate-latency MS   hold each update and each pong MS milliseconds (a distant link)
  --simulate-upload BPS   hold each update as long as an upload of BPS bytes/s would take to carry it
  --byzantine MODE        send bad updates: scale (4x), sign-flip (-4x), random (noise 4x as long) or blow-up
                          (30x: past the coordinator's norm clip, so it counts clipped)
`;

export async function runAgentCli(argv: string[]): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        coordinator: { type: 'string' },
        name: { type: 'string' },
        backend: { type: 'string' },
        'state-dir': { type: 'string' },
        dataset: { type: 'string', multiple: true },
        'join-token': { type: 'string' },
        ca: { type: 'string' },
        'simulate-speed': { type: 'string' },
        'simulate-latency': { type: 'string' },
        'simulate-upload': { type: 'string' },
        byzantine: { type: 'string' },
        'wallet-key-file': { type: 'string' },
        'payout-address': { type: 'string' },
        'no-wallet': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const coordinator = values.coordinator ?? process.env.HYPERGPU_COORDINATOR ?? 'ws://127.0.0.1:3000/agent';
  if (!/^wss?:\/\//.test(coordinator)) {
    process.stderr.write(`--coordinator must be a ws:// or wss:// URL (got ${coordinator})\n\n${USAGE}`);
    process.exit(2);
  }
  const name = values.name ?? `${os.hostname()}-${process.pid}`;
  const log = (line: string) => process.stdout.write(`[agent ${name}] ${line}\n`);
  const backends = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
  const prefer = values.backend as (typeof backends)[number] | undefined;
  if (prefer && !backends.includes(prefer)) {
    process.stderr.write(`--backend must be one of ${backends.join(', ')} (got ${prefer})\n`);
    process.exit(2);
  }
  let datasets: Map<string, string>;
  try {
    // A flag names the same dataset as the environment: the flag wins.
    datasets = new Map([...parseDatasetSpecs([process.env.HYPERGPU_DATASETS ?? '']), ...parseDatasetSpecs(values.dataset ?? [])]);
  } catch (error) {
    if (!(error instanceof DatasetConfigError)) throw error;
    process.stderr.write(`${error.message}\n\n${USAGE}`);
    process.exit(2);
  }
  const stateDir = values['state-dir'] ?? path.join(os.homedir(), '.hypergpu');
  const endpoint = new URL(coordinator);
  const tokenFile = path.join(stateDir, `${endpoint.hostname}_${endpoint.port || (endpoint.protocol === 'wss:' ? 443 : 80)}_${name}.token`);
  let agent: NodeAgent;
  const onFatal = (reason: string) => {
    process.stderr.write(`[agent ${name}] cannot continue: ${reason}\n`);
    void agent.stop('fatal').finally(() => process.exit(3));
  };
  const joinToken = values['join-token'] ?? (process.env.HYPERGPU_JOIN_TOKEN || undefined);
  const caFile = values.ca ?? (process.env.HYPERGPU_CA || undefined);
  let ca: Buffer | undefined;
  if (caFile) {
    try {
      ca = readFileSync(caFile);
    } catch (error) {
      process.stderr.write(`--ca ${caFile} cannot be read: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(2);
    }
  }
  let simulate: Simulation | undefined;
  try {
    simulate = parseSimulation(values);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    process.exit(2);
  }
  const simulated = describeSimulation(simulate);
  if (simulated) log(`SIMULATING: ${simulated}`);
    let wallet: NodeWallet | undefined;
  if (!values['no-wallet']) {
    try {
      wallet = loadWallet({
        keyFile: values['wallet-key-file'],
        envKey: process.env.HYPERGPU_WALLET_KEY || undefined,
        stateDir,
        name,
        payout: values['payout-address'],
        log,
      });
      log(`wallet ${wallet.address}${wallet.payout !== wallet.address ? `, paid at ${wallet.payout}` : ''} (key from ${wallet.source})`);
    } catch (error) {
      process.stderr.write(`wallet: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(2);
    }
  }
  agent = new NodeAgent({ coordinator, name, backend: prefer, datasets, log, tokenFile, onFatal, joinToken, ca, simulate, wallet });
  // tfjs loads in the training thread, which logs the backend it chose.
  const info = await agent.init();
  if (datasets.size) log(`datasets configured here: mnist, ${[...datasets.keys()].join(', ')}`);
  const speed = await agent.calibrate();
  log(`measured ${Math.round(speed)} samples/s (mlp gradient, ${info.name}); connecting to ${coordinator}`);
  agent.start();
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: leaving`);
    void agent.stop(`agent received ${signal}`).finally(() => process.exit(0));
  };
  // A local agent spawned by `npm start` has an IPC channel to it; when the server dies (even by SIGKILL)
  // the channel closes and the agent leaves instead of reconnecting forever as an orphan.
  if (process.send) process.on('disconnect', () => shutdown('server process gone'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

/** The --simulate-* and --byzantine flags; undefined when none is given. */
function parseSimulation(values: Record<string, string | boolean | string[] | undefined>): Simulation | undefined {
  const num = (flag: string, ok: (n: number) => boolean): number | undefined => {
    const raw = values[flag];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isFinite(n) || !ok(n)) throw new Error(`--${flag} ${String(raw)} is not valid`);
    return n;
  };
  const sim: Simulation = {};
  const speed = num('simulate-speed', (n) => n > 0 && n <= 1);
  if (speed !== undefined) sim.speed = speed;
  const latency = num('simulate-latency', (n) => n >= 0 && n <= 60_000);
  if (latency !== undefined) sim.latencyMs = latency;
  const upload = num('simulate-upload', (n) => n > 0);
  if (upload !== undefined) sim.uploadBytesPerSecond = upload;
  const mode = values.byzantine;
  if (mode !== undefined) {
    if (!BYZANTINE_MODES.includes(mode as ByzantineMode)) throw new Error(`--byzantine must be one of ${BYZANTINE_MODES.join(', ')} (got ${String(mode)})`);
    sim.byzantine = mode as ByzantineMode;
  }
  return Object.keys(sim).length ? sim : undefined;
}

const invokedDirectly = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/').split('/').pop()!);
if (invokedDirectly) {
  runAgentCli(process.argv.slice(2)).catch((error) => {
    process.stderr.write(`agent failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
