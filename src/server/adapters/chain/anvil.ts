// Starts the local chain `npm start` settles on: the real anvil binary from the npm package @foundry-rs/anvil,
// on loopback, a free port, chain id 10143 (Monad testnet's, so the local run takes the same code path). Its state
// is kept in the data dir (dumped every few seconds and at exit), so a restarted coordinator finds its contract
// and settlements again.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** anvil's first dev account (from its well-known test mnemonic): funded with 10,000 ETH at start. Local only. */
export const ANVIL_DEV_KEY = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80' as const;

const SETPRIV = '/usr/bin/setpriv';

export interface AnvilProcess {
  rpcUrl: string;
  port: number;
  stop(): Promise<void>;
}

export function anvilBinary(): string {
  const require = createRequire(import.meta.url);
  try {
    const pkg = path.dirname(require.resolve('@foundry-rs/anvil-linux-amd64/package.json'));
    const bin = path.join(pkg, 'bin', 'anvil');
    if (existsSync(bin)) return bin;
  } catch {
    // fall through to the tree layout
  }
  const fallback = path.resolve(process.cwd(), 'node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil');
  if (existsSync(fallback)) return fallback;
  throw new Error('anvil binary not found: install @foundry-rs/anvil (npm install), or run with --no-chain');
}

export async function startAnvil(options: { chainId: number; stateFile?: string; timeoutMs?: number; blockTimeS?: number }): Promise<AnvilProcess> {
  const args = ['--host', '127.0.0.1', '--port', '0', '--chain-id', String(options.chainId)];
  // Mine on an interval instead of at once (tests: a transaction stays pending long enough to crash during it).
  if (options.blockTimeS) args.push('--block-time', String(options.blockTimeS));
  if (options.stateFile) args.push('--state', options.stateFile, '--state-interval', '2');
  // Under setpriv --pdeathsig where there is one (util-linux): the kernel sends anvil SIGTERM when the coordinator
  // dies, even by kill -9, so no chain outlives its coordinator (and SIGTERM still lets it dump its state).
  const guarded = process.platform === 'linux' && existsSync(SETPRIV);
  const child: ChildProcess = guarded
    ? spawn(SETPRIV, ['--pdeathsig', 'TERM', '--', anvilBinary(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`anvil did not start within ${options.timeoutMs ?? 10_000} ms: ${out.slice(-500)}`)), options.timeoutMs ?? 10_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = /Listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        // Keep draining its output (a full pipe would stall it), without keeping it.
        child.stdout?.resume();
        resolve(Number(match[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`anvil exited with code ${code}: ${out.slice(-500)}`));
    });
  });
  return {
    rpcUrl: `http://127.0.0.1:${port}`,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        // SIGTERM: anvil dumps its state (--state) before it exits.
        child.kill('SIGTERM');
      }),
  };
}
