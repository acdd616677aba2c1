// The coordinator's V8 heap flags (src/server/node-flags.ts) are passed by every way the project starts it; a
// launcher that drops them costs about 1.6x the server CPU per round, mostly garbage collection.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { missingNodeFlags, missingServerEnv, SERVER_ENV, SERVER_NODE_FLAGS, withoutServerEnv } from '../../src/server/node-flags';

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
