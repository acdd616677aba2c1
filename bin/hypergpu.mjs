#!/usr/bin/env node
// `hypergpu agent --coordinator ws://HOST:PORT/agent` joins a coordinator as a node agent;
// `hypergpu server [options]` (or no subcommand) runs the coordinator, as `npm start` does.
// The sources are TypeScript, run through tsx's loader so a clone needs no build step.
import { register } from 'tsx/esm/api';

register();
const [command, ...rest] = process.argv.slice(2);
if (command === 'agent') {
  const { runAgentCli } = await import('../src/agent/cli.ts');
  await runAgentCli(rest);
} else if (command === undefined || command === 'server' || command.startsWith('-')) {
  process.argv = [process.argv[0], 'hypergpu', ...(command === 'server' ? rest : process.argv.slice(2))];
  await import('../src/server/main.ts');
} else {
  process.stderr.write(`unknown command ${command}\nUsage: hypergpu agent --coordinator ws://HOST:PORT/agent [--name NAME]\n       hypergpu server [--port N] [--nodes N] [--headless] ...\n`);
  process.exit(2);
}
