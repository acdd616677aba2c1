#!/usr/bin/env node
// `hypergpu agent --coordinator ws://HOST:PORT/agent` joins a coordinator as a node agent;
// `hypergpu server [options]` (or no subcommand) runs the coordinator, as `npm start` does.
// The agent's sources are TypeScript, run through tsx's loader so a clone needs no build step. The server runs
// as `npm start` runs it, from its esbuild bundle (scripts/build-server.mjs, about a second, only changed files
// rewritten); where esbuild is not installed (a production install without devDependencies) it runs under tsx.
const [command, ...rest] = process.argv.slice(2);
if (command === 'agent') {
  const { register } = await import('tsx/esm/api');
  register();
  const { runAgentCli } = await import('../src/agent/cli.ts');
  await runAgentCli(rest);
} else if (command === undefined || command === 'server' || command.startsWith('-')) {
  process.argv = [process.argv[0], 'hypergpu', ...(command === 'server' ? rest : process.argv.slice(2))];
  let bundle = null;
  try {
    const build = await import('../scripts/build-server.mjs');
    await build.buildServer({ quiet: true, stopService: true });
    bundle = build.SERVER_BUNDLE_URL;
  } catch (error) {
    process.stderr.write(`server bundle unavailable (${error instanceof Error ? error.message : String(error)}); running the sources under tsx\n`);
  }
  if (bundle) {
    await import(bundle);
  } else {
    const { register } = await import('tsx/esm/api');
    register();
    await import('../src/server/main.ts');
  }
} else {
  process.stderr.write(`unknown command ${command}\nUsage: hypergpu agent --coordinator ws://HOST:PORT/agent [--name NAME]\n       hypergpu server [--port N] [--nodes N] [--headless] ...\n`);
  process.exit(2);
}
