// The coordinator's V8 heap flags (src/server/node-flags.ts) are passed by every way the project starts it; a
// launcher that drops them costs about 1.6x the server CPU per round, mostly garbage collection.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { missingNodeFlags, missingServerEnv, releaseWorkerHeapFlags, SERVER_ENV, SERVER_NODE_FLAGS, withoutServerEnv } from '../../src/server/node-flags';

describe('the server node flags', () => {
  it('npm start and npm run dev pass every one of them to the server process', () => {
    const scripts = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).scripts as Record<string, string>;
    for (const name of ['start', 'dev']) {
      const serverCommand = scripts[name].split('&&').at(-1)!;
      for (const flag of SERVER_NODE_FLAGS) expect(serverCommand, `${name}: ${flag}`).toContain(` ${flag} `);
      // glibc reads it when the process starts: it must be in the environment of the node that runs the server.
      for (const [variable, value] of Object.entries(SERVER_ENV)) expect(serverCommand, `${name}: ${variable}`).toMatch(new RegExp(`(^| )${variable}=${value} exec node `));
    }
    const playwright = readFileSync(new URL('../../playwright.config.ts', import.meta.url), 'utf8');
    expect(playwright).toContain("exec node ${SERVER_NODE_FLAGS.join(' ')} .build/server/main.mjs");
    expect(playwright).toContain('env: { ...SERVER_ENV,');
  });

  it('names the flags a process was started without', () => {
    expect(missingNodeFlags([...SERVER_NODE_FLAGS])).toEqual([]);
    expect(missingNodeFlags(['--max-semi-space-size=1'])).toEqual(['--initial-old-space-size=64']);
    expect(missingNodeFlags(['--max-semi-space-size=2', '--initial-old-space-size=64'])).toEqual(['--max-semi-space-size=1']);
  });

  it('names the malloc settings a process was started without, and leaves them out of what it starts', () => {
    expect(missingServerEnv({ ...SERVER_ENV })).toEqual([]);
    expect(missingServerEnv({})).toEqual(['MALLOC_MMAP_THRESHOLD_=131072']);
    expect(missingServerEnv({ MALLOC_MMAP_THRESHOLD_: '4096' })).toEqual(['MALLOC_MMAP_THRESHOLD_=131072']);
    const inherited = { ...SERVER_ENV, PATH: '/usr/bin', HYPERGPU_ADMIN_TOKEN: 'x' };
    expect(withoutServerEnv(inherited)).toEqual({ PATH: '/usr/bin', HYPERGPU_ADMIN_TOKEN: 'x' });
    expect(inherited.MALLOC_MMAP_THRESHOLD_).toBe('131072'); // the caller's object is not changed
  });
});

describe('the worker heap flags', () => {
  it("lets worker threads started after releaseWorkerHeapFlags grow their young generation past the main thread's 1 MB semi-spaces", () => {
    // A node started with the server's flags: a worker that churns short-lived objects, before and after the reset.
    const script = `
      import { Worker } from 'node:worker_threads';
      import { releaseWorkerHeapFlags } from ${JSON.stringify(new URL('../../src/server/node-flags.ts', import.meta.url).href)};
      const churn = "Promise.all([import('node:v8'), import('node:worker_threads')]).then(([{ default: v8 }, { parentPort }]) => { let keep = []; for (let i = 0; i < 3e6; i++) { keep.push({ i }); if (keep.length > 20000) keep = []; } parentPort.postMessage(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size); });";
      const newSpace = () => new Promise((resolve) => { const w = new Worker(churn, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: 16 } }); w.once('message', (m) => { resolve(m); void w.terminate(); }); });
      const before = await newSpace();
      releaseWorkerHeapFlags();
      const after = await newSpace();
      console.log(JSON.stringify({ before, after }));`;
    const run = spawnSync(process.execPath, [...SERVER_NODE_FLAGS, '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    const { before, after } = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { before: number; after: number };
    // Under the process flag the worker's new space stays at 2 x 1 MB whatever its resourceLimits say.
    expect(before).toBeLessThanOrEqual(2 * 2 ** 20);
    expect(after).toBeGreaterThan(2 * 2 ** 20);
    expect(after).toBeLessThanOrEqual(16 * 2 ** 20);
  }, 60_000);

  it('resets both heap flags to V8 sizing its isolates itself', () => {
    const set: string[] = [];
    releaseWorkerHeapFlags((flag) => set.push(flag));
    expect(set).toEqual(['--max-semi-space-size=0', '--initial-old-space-size=0']);
    // Every flag the server starts with is one the reset covers.
    for (const flag of SERVER_NODE_FLAGS) expect(set.map((f) => f.split('=')[0])).toContain(flag.split('=')[0]);
  });
});
