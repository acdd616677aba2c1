// The coordinator's V8 heap flags (src/server/node-flags.ts) are passed by every way the project starts it; a
// launcher that drops them costs about 1.6x the server CPU per round, mostly garbage collection.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { missingNodeFlags, SERVER_NODE_FLAGS } from '../../src/server/node-flags';

describe('the server node flags', () => {
  it('npm start and npm run dev pass every one of them to the server process', () => {
    const scripts = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).scripts as Record<string, string>;
    for (const name of ['start', 'dev']) {
      const serverCommand = scripts[name].split('&&').at(-1)!;
      for (const flag of SERVER_NODE_FLAGS) expect(serverCommand, `${name}: ${flag}`).toContain(` ${flag} `);
    }
    const playwright = readFileSync(new URL('../../playwright.config.ts', import.meta.url), 'utf8');
    expect(playwright).toContain("exec node ${SERVER_NODE_FLAGS.join(' ')} .build/server/main.mjs");
  });

  it('names the flags a process was started without', () => {
    expect(missingNodeFlags([...SERVER_NODE_FLAGS])).toEqual([]);
    expect(missingNodeFlags(['--max-semi-space-size=1'])).toEqual(['--initial-old-space-size=64']);
    expect(missingNodeFlags(['--max-semi-space-size=2', '--initial-old-space-size=64'])).toEqual(['--max-semi-space-size=1']);
  });
});
