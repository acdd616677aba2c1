// HyperGPU server entry: one port for the dashboard (Next.js), tRPC, REST and the node agents' WebSocket.
// `npm start` runs this: it migrates the database, starts the coordinator, spawns local agents, starts a
// default session (MLP on MNIST) and prints the dashboard URL. Ctrl-C writes a final checkpoint and exits.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DATASET_ID_PATTERN } from '../protocol/dataset-id';
import { parseDatasetSpecs } from '../ml/datasets/registry';
import { readEnv } from './env';
import { ensureDashboardBuild } from './dashboard-build';
import { AGENT_PATH, createRuntime, type Runtime } from './runtime';
import { startTrainingInput } from './api/inputs';
import type { LogLine } from './core/events';
import { createSignalPolicy } from './core/signal-policy';
import type { SessionConfigInput } from './core/session-config';
import type { SessionSnapshot } from './core/types';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const USAGE = `Usage: npm start -- [options]

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
  --model mlp|cnn        model to train (default mlp)
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
  --data-dir DIR         database and checkpoints (default ./data, or HYPERGPU_DATA_DIR)
  --fresh                start a new session even if an interrupted one can be resumed
  --no-session           start no session (use the dashboard or POST /api/training/start)
  --timeout S            headless: give up after S seconds (default 900)
  --dev                  serve the dashboard with Next's dev server (hot reload)
  --open-pool            admit agents without a join token (or HYPERGPU_OPEN_POOL=1); trusted networks only
  --tls-cert FILE        serve HTTPS and wss:// with this PEM certificate (or HYPERGPU_TLS_CERT); needs --tls-key
  --tls-key FILE         the certificate's PEM private key (or HYPERGPU_TLS_KEY)

  New agents need a join token (POST /api/join-tokens) unless the pool is open; see README, Security.
`;

interface Cli {
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
  config: SessionConfigInput;
}

function parseCli(argv: string[]): Cli {
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
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
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
    if (values.model !== 'mlp' && values.model !== 'cnn') throw new Error(`--model must be mlp or cnn (got ${values.model})`);
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
  // The same bounds as POST /api/training/start (api/inputs.ts): a flag is no way around them.
  const checked = startTrainingInput.safeParse(config);
  if (!checked.success) throw new Error(checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  const certFile = values['tls-cert'] ?? env.HYPERGPU_TLS_CERT;
  const keyFile = values['tls-key'] ?? env.HYPERGPU_TLS_KEY;
  if (Boolean(certFile) !== Boolean(keyFile)) throw new Error('--tls-cert and --tls-key go together (or HYPERGPU_TLS_CERT and HYPERGPU_TLS_KEY)');
  return {
    openPool: values['open-pool'] ?? env.HYPERGPU_OPEN_POOL,
    tls: certFile && keyFile ? { certFile, keyFile } : null,
    port: num('port', values.port, (n) => Number.isInteger(n) && n >= 0 && n < 65536) ?? env.PORT,
    host: values.host ?? env.HOST,
    nodes: num('nodes', values.nodes, (n) => Number.isInteger(n) && n >= 0 && n <= 256) ?? env.HYPERGPU_NODES,
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

function timestamp(at: number): string {
  return new Date(at).toISOString().slice(11, 23);
}

function printLog(line: LogLine): void {
  const stream = line.level === 'error' ? process.stderr : process.stdout;
  stream.write(`${timestamp(line.at)} ${line.level === 'info' ? '' : `${line.level.toUpperCase()} `}${line.message}\n`);
}

async function attachNext(runtime: Runtime, dev: boolean, host: string, port: number): Promise<void> {
  if (!dev) ensureDashboardBuild();
  process.env.NEXT_TELEMETRY_DISABLED = '1';
  const { default: next } = await import('next');
  const app = next({ dev, dir: ROOT, hostname: host === '0.0.0.0' ? 'localhost' : host, port, httpServer: runtime.server });
  await app.prepare();
  const handle = app.getRequestHandler();
  runtime.setFallback((req, res) => void handle(req, res));
}

/** Local agents as child processes; a crashed one is restarted (at most 5 times a minute). */
class LocalAgents {
  private readonly children = new Map<number, ChildProcess>();
  private readonly restarts: number[] = [];
  private stopping = false;

  constructor(
    private readonly coordinatorUrl: string,
    private readonly quiet: boolean,
    private readonly stateDir: string,
    /** `name=dir` of every registered dataset: local agents share this machine's folders. */
    private readonly datasetSpecs: string[] = [],
    /** Env for the agents: the join token issued for them, and the CA file that verifies a TLS coordinator. */
    private readonly agentEnv: Record<string, string> = {},
  ) {}

  start(count: number): void {
    for (let i = 1; i <= count; i++) this.spawn(i);
  }

  private spawn(index: number): void {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'agent', 'cli.ts'), '--coordinator', this.coordinatorUrl, '--name', `local-${index}`, '--state-dir', this.stateDir, ...this.datasetSpecs.flatMap((spec) => ['--dataset', spec])], {
      cwd: ROOT,
      // The IPC channel is only there to close when this process dies, however it dies (see agent cli).
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...this.agentEnv },
    });
    this.children.set(index, child);
    const forward = (stream: NodeJS.ReadableStream, out: NodeJS.WritableStream) => {
      let buffered = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) if (!this.quiet || out === process.stderr) out.write(`${line}\n`);
      });
    };
    forward(child.stdout!, process.stdout);
    forward(child.stderr!, process.stderr);
    child.on('exit', (code, signal) => {
      this.children.delete(index);
      if (this.stopping) return;
      const now = Date.now();
      this.restarts.push(now);
      while (this.restarts.length && now - this.restarts[0] > 60_000) this.restarts.shift();
      if (this.restarts.length > 5) {
        printLog({ at: now, level: 'error', message: `agent local-${index} keeps exiting (${signal ?? `code ${code}`}); not restarting it` });
        return;
      }
      printLog({ at: now, level: 'warn', message: `agent local-${index} exited (${signal ?? `code ${code}`}); restarting it` });
      setTimeout(() => !this.stopping && this.spawn(index), 1000);
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const exits = [...this.children.values()].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, 5000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGTERM');
        }),
    );
    await Promise.all(exits);
  }
}

/** The admin token, printed only on the start that created it; later starts say where it lives and how to replace it. */
function adminTokenNotice(runtime: Runtime, port: number, resetAsked: boolean): string {
  const { source, createdToken, tokenFile } = runtime.operatorAuth;
  if (createdToken !== null) {
    return (
      `\nAdmin token (shown this once; only its hash is kept, in ${tokenFile}):\n\n    ${createdToken}\n\n` +
      `  Sign in at http://localhost:${port}/sign-in with it (the dashboard), or send it from scripts:\n` +
      `    curl -X POST -H 'Authorization: Bearer <token>' http://localhost:${port}/api/training/pause\n` +
      `  Lost it? Restart with --reset-admin-token (or set HYPERGPU_ADMIN_TOKEN).\n`
    );
  }
  if (source === 'env') return `\nAdmin token: from HYPERGPU_ADMIN_TOKEN.${resetAsked ? ' (--reset-admin-token does nothing while it is set.)' : ''}\n`;
  return `\nAdmin token: set at first start (its hash is in ${tokenFile}); lost it? restart with --reset-admin-token.\n`;
}

function summary(session: SessionSnapshot, nodes: number, startedAt: number) {
  return {
    ok: session.state === 'completed',
    sessionId: session.id,
    state: session.state,
    message: session.message,
    finalAccuracy: session.lastTestAccuracy,
    finalTestLoss: session.lastTestLoss,
    rounds: session.round,
    samples: session.totalSamples,
    samplesPerSecond: Math.round(session.samplesPerSecond),
    nodes,
    seconds: Math.round((Date.now() - startedAt) / 100) / 10,
  };
}

async function main(): Promise<void> {
  let cli: Cli;
  try {
    cli = parseCli(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    process.exit(2);
  }
  const env = readEnv();
  const startedAt = Date.now();
  const runtime = await createRuntime({
    dataDir: cli.dataDir,
    heartbeatMs: env.HYPERGPU_HEARTBEAT_MS,
    heartbeatTimeoutMs: env.HYPERGPU_HEARTBEAT_TIMEOUT_MS,
    aggregatorWorkers: env.HYPERGPU_AGGREGATOR_WORKERS,
    maxFrameBytes: env.HYPERGPU_MAX_FRAME_MB === undefined ? undefined : Math.round(env.HYPERGPU_MAX_FRAME_MB * 1024 * 1024),
    datasets: cli.datasets,
    keepCheckpoints: env.HYPERGPU_KEEP_CHECKPOINTS,
    openPool: cli.openPool,
    pruneIdleNodesAfterMs: env.HYPERGPU_IDLE_NODE_DAYS * 24 * 3600 * 1000,
    gateway: {
      preHelloFrameBytes: env.HYPERGPU_PRE_HELLO_FRAME_KB === undefined ? undefined : env.HYPERGPU_PRE_HELLO_FRAME_KB * 1024,
      helloTimeoutMs: env.HYPERGPU_HELLO_TIMEOUT_MS,
      maxConnections: env.HYPERGPU_MAX_AGENT_CONNECTIONS,
      maxConnectionsPerAddress: env.HYPERGPU_MAX_AGENT_CONNECTIONS_PER_ADDRESS,
      bytesPerSecond: env.HYPERGPU_AGENT_BYTES_PER_SECOND,
      burstBytes: env.HYPERGPU_AGENT_BYTES_PER_SECOND === undefined ? undefined : 2 * env.HYPERGPU_AGENT_BYTES_PER_SECOND,
      maxBufferedBytes: env.HYPERGPU_AGENT_MAX_BUFFERED_MB === undefined ? undefined : Math.round(env.HYPERGPU_AGENT_MAX_BUFFERED_MB * 1024 * 1024),
      offenderStrikes: env.HYPERGPU_AGENT_OFFENDER_STRIKES,
      offenderBanMs: env.HYPERGPU_AGENT_OFFENDER_BAN_S === undefined ? undefined : env.HYPERGPU_AGENT_OFFENDER_BAN_S * 1000,
    },
    tls: cli.tls ? { cert: readFileSync(cli.tls.certFile), key: readFileSync(cli.tls.keyFile) } : undefined,
    log: printLog,
    security: {
      adminToken: env.HYPERGPU_ADMIN_TOKEN,
      resetAdminToken: cli.resetAdminToken,
      privateReads: env.HYPERGPU_PRIVATE_READS,
      publicHosts: cli.publicHosts,
      allowedOrigins: env.HYPERGPU_ALLOWED_ORIGINS,
    },
  });
  // Recover or start the session and prepare the dashboard before accepting connections, so nothing
  // (an agent, a script polling /api/status) ever sees a half-started coordinator.
  let session: SessionSnapshot | null = null;
  let resumeFailure: string | null = null;
  if (cli.session) {
    if (!cli.headless && !cli.fresh) {
      try {
        session = await runtime.coordinator.resumeInterrupted();
      } catch (error) {
        // Never a quiet default session in place of one that could not be resumed: say so, serve the API and
        // the dashboard without a session, and let the operator decide (--fresh, or the dashboard's start).
        resumeFailure = error instanceof Error ? error.message : String(error);
      }
    }
    if (!session && resumeFailure === null) session = await runtime.coordinator.start(cli.config);
  }
  if (cli.dashboard) await attachNext(runtime, cli.dev, cli.host, cli.port);
  const port = await runtime.listen(cli.port, cli.host);
  const localHost = cli.host === '0.0.0.0' || cli.host === '::' ? '127.0.0.1' : cli.host;
  const scheme = cli.tls ? 'wss' : 'ws';
  const agentUrl = `${scheme}://${localHost}:${port}${AGENT_PATH}`;

  // The local agents are admitted like any other: with a join token, issued now for them (a day's validity is
  // plenty, they keep their node secrets after the first hello) and revoked at a clean shutdown.
  const agentEnv: Record<string, string> = {};
  let localToken: number | null = null;
  if (cli.nodes > 0 && !cli.openPool) {
    const issued = await runtime.joinTokens.issue({ label: `local agents of the coordinator started ${new Date(startedAt).toISOString()}`, expiresInSeconds: 24 * 3600 });
    agentEnv.HYPERGPU_JOIN_TOKEN = issued.token;
    localToken = issued.joinToken.id;
  }
  // With TLS, local agents trust the server's own certificate (the self-signed case; HYPERGPU_CA overrides).
  if (cli.tls) agentEnv.HYPERGPU_CA = process.env.HYPERGPU_CA || path.resolve(cli.tls.certFile);
  const agents = new LocalAgents(
    agentUrl,
    cli.headless,
    path.join(path.resolve(cli.dataDir), 'agents'),
    [...cli.datasets].map(([name, dir]) => `${name}=${dir}`),
    agentEnv,
  );
  let shuttingDown = false;
  const shutdown = async (code: number, why: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    process.stdout.write(`\n${why}: stopping agents, writing a final checkpoint...\n`);
    await agents.stop();
    if (localToken !== null) await runtime.joinTokens.revoke(localToken).catch(() => undefined);
    await runtime.close();
    process.stdout.write('HyperGPU stopped cleanly.\n');
    process.exit(code);
  };
  // Ctrl-C in a terminal signals the whole process group, and npm relays it once more: a repeat within 10 s
  // is the same request; a third signal, or one after that, forces the exit (core/signal-policy.ts).
  const signals = createSignalPolicy();
  const onSignal = (signal: NodeJS.Signals) => {
    const decision = signals.receive(Date.now());
    if (decision === 'shutdown') return void shutdown(0, signal);
    if (decision === 'force') {
      process.stderr.write(`${signal} again: exiting now, without waiting for the final checkpoint (the journal keeps every committed round)\n`);
      process.exit(130);
    }
    process.stdout.write(`${signal}: already shutting down (a third signal forces an exit)\n`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  agents.start(cli.nodes);
  process.stdout.write(adminTokenNotice(runtime, port, cli.resetAdminToken));
  if (resumeFailure !== null) {
    process.stderr.write(
      `\nERROR: the interrupted session could not be resumed, so no session was started.\n  ${resumeFailure}\n` +
        `  Start a new one with \`npm start -- --fresh\`, from the dashboard, or POST /api/training/start.\n`,
    );
  }
  if (!cli.headless) {
    process.stdout.write(
      `\nHyperGPU is running.\n  Dashboard:  ${cli.dashboard ? `${cli.tls ? 'https' : 'http'}://localhost:${port}/` : 'off (--no-dashboard)'}\n  API:        ${cli.tls ? 'https' : 'http'}://localhost:${port}/api/status\n` +
        `  Agents:     npm run agent -- --coordinator ${scheme}://<this-host>:${port}${AGENT_PATH}${cli.openPool ? '  (OPEN POOL: no join token needed)' : ' --join-token <token from POST /api/join-tokens>'}` +
        `${['127.0.0.1', 'localhost', '::1'].includes(cli.host) ? '\n              (listening on loopback only: other machines need --host 0.0.0.0, see Security in README.md)' : ''}\n` +
        `  ${cli.nodes} local agent(s) started. Press Ctrl-C to stop (a final checkpoint is written).\n\n`,
    );
    return;
  }
  if (!session) {
    process.stderr.write('--headless needs a session: drop --no-session\n');
    await shutdown(2, 'no session');
    return;
  }
  process.stdout.write(`Headless run: session ${session.id}, ${cli.nodes} local agent(s), API on http://localhost:${port}/api/status\n`);
  const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), cli.timeoutS * 1000).unref());
  const ended = runtime.coordinator.waitForSession((s) => s.state === 'completed' || s.state === 'stopped' || s.state === 'failed');
  const result = await Promise.race([ended, timeout]);
  const final = result === 'timeout' ? runtime.coordinator.status().session! : result;
  const report = summary(final, runtime.coordinator.nodes().length, startedAt);
  if (result === 'timeout') {
    report.ok = false;
    report.message = `gave up after ${cli.timeoutS} s (${final.message ?? 'target not reached'})`;
  } else if (typeof cli.config.targetAccuracy === 'number' && (final.lastTestAccuracy ?? 0) < cli.config.targetAccuracy) {
    report.ok = false;
  }
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  await shutdown(report.ok ? 0 : 1, report.ok ? 'done' : 'target not reached');
}

main().catch((error) => {
  process.stderr.write(`HyperGPU failed to start: ${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
