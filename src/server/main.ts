// HyperGPU server entry: one port for the dashboard (Next.js), tRPC, REST and the node agents' WebSocket.
// `npm start` runs this: it migrates the database, starts the coordinator, spawns local agents, starts a
// default session (MLP on MNIST) and prints the dashboard URL. Ctrl-C writes a final checkpoint and exits.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readEnv } from './env';
import { ensureDashboardBuild } from './dashboard-build';
import { AGENT_PATH, createRuntime, type Runtime } from './runtime';
import { parseCli, USAGE, type Cli } from './cli';
import { LocalAgents, planLocalAgents } from './local-agents';
import type { LogLine } from './core/events';
import { createSignalPolicy } from './core/signal-policy';
import type { SessionSnapshot } from './core/types';
import { missingNodeFlags, missingServerEnv, releaseWorkerHeapFlags } from './node-flags';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

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
  // The main isolate keeps the heap flags it started with; the worker threads size their own heaps (node-flags.ts).
  releaseWorkerHeapFlags();
  const runtime = await createRuntime({
    dataDir: cli.dataDir,
    heartbeatMs: env.HYPERGPU_HEARTBEAT_MS,
    heartbeatTimeoutMs: env.HYPERGPU_HEARTBEAT_TIMEOUT_MS,
    aggregatorWorkers: env.HYPERGPU_AGGREGATOR_WORKERS,
    maxFrameBytes: env.HYPERGPU_MAX_FRAME_MB === undefined ? undefined : Math.round(env.HYPERGPU_MAX_FRAME_MB * 1024 * 1024),
    datasets: cli.datasets,
    keepCheckpoints: env.HYPERGPU_KEEP_CHECKPOINTS,
    auditRate: env.HYPERGPU_AUDIT_RATE,
    backgroundNiceness: env.HYPERGPU_BACKGROUND_NICE,
    auditMemoryBytes: env.HYPERGPU_AUDIT_MEMORY_MB === undefined ? undefined : Math.round(env.HYPERGPU_AUDIT_MEMORY_MB * 2 ** 20),
    auditSpillBytes: env.HYPERGPU_AUDIT_SPILL_MB === undefined ? undefined : Math.round(env.HYPERGPU_AUDIT_SPILL_MB * 2 ** 20),
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
    chain: cli.chain,
    rewardPolicy: cli.rewardPolicy,
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
  if (cli.nodes + cli.byzantine > 0 && !cli.openPool) {
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
    printLog,
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

  const roles = planLocalAgents(cli.nodes, cli.profile, cli.byzantine, cli.byzantineMode);
  agents.start(roles);
  if (cli.profile !== 'uniform' || cli.byzantine > 0) {
    process.stdout.write(`Local agents (--profile ${cli.profile}${cli.byzantine ? `, --byzantine ${cli.byzantine}` : ''}):\n${roles.map((r) => `  ${r.name.padEnd(12)} ${r.description}`).join('\n')}\n`);
  }
  process.stdout.write(adminTokenNotice(runtime, port, cli.resetAdminToken));
  const missingFlags = missingNodeFlags();
  if (missingFlags.length > 0) {
    process.stdout.write(`Note: node was started without ${missingFlags.join(' ')} (npm start passes them); without them the server spends about 1.6x the CPU per round, most of it in garbage collection (src/server/node-flags.ts).\n`);
  }
  const missingEnv = missingServerEnv();
  if (missingEnv.length > 0) {
    process.stdout.write(`Note: the server was started without ${missingEnv.join(' ')} in its environment (npm start sets it); without it glibc's malloc heaps fragment and the server's memory creeps up over long runs (src/server/node-flags.ts).\n`);
  }
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
        `  Chain:      ${runtime.chain ? `${runtime.chain.info.rpcUrl} (chain id ${runtime.chain.info.chainId}), contract ${runtime.chain.info.contractAddress}; rewards at ${cli.tls ? 'https' : 'http'}://localhost:${port}/rewards` : 'off (epochs are planned in the ledger, settled nowhere)'}\n` +
        `  ${roles.length} local agent(s) started. Press Ctrl-C to stop (a final checkpoint is written).\n\n`,
    );
    return;
  }
  if (!session) {
    process.stderr.write('--headless needs a session: drop --no-session\n');
    await shutdown(2, 'no session');
    return;
  }
  process.stdout.write(`Headless run: session ${session.id}, ${roles.length} local agent(s), API on http://localhost:${port}/api/status\n`);
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
