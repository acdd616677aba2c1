// The import rules of "Dependency direction" in shared/notes/architecture.md, as data that
// scripts/check-architecture.mjs enforces. Each source file under src/ belongs to exactly one zone (first match
// below); each zone says what it may import. Anything not allowed is a violation, so a new kind of import needs a
// rule change here, in review, not a quiet exception.
//
// Allow entries for files in src/ (`imports`):
//   { zone }              any file of that zone
//   { path }              one file (exact path from the repository root)
//   typeOnly: true        only `import type` / `export type` / `import('x').T` (erased at build: no runtime edge)
//   sameAdapter: true     only files of the same adapter (see adapterOf in check-architecture.mjs)
// Packages (`packages`): 'any', { allow: [...] } or { deny: [...] }; a name ending in '/*' matches a whole scope.
// Node built-ins (`builtins`): 'any', 'type' (type-only imports) or 'none'.

/** Libraries that belong to the server's I/O or to the browser; the agent, workers and ml never need them. */
const SERVER_AND_BROWSER_PACKAGES = ['@prisma/*', 'prisma', 'better-sqlite3', 'next', 'react', 'react-dom', '@trpc/*', '@tanstack/*'];

/** @type {{ name: string, files?: string[], under?: string }[]} in match order */
export const ZONES = [
  { name: 'composition-root', files: ['src/server/main.ts', 'src/server/runtime.ts', 'src/server/cli.ts', 'src/server/local-agents.ts', 'src/server/health-probes.ts', 'src/server/chain-setup.ts', 'src/server/node-flags.ts'] },
  { name: 'server-support', files: ['src/server/env.ts', 'src/server/dashboard-build.ts'] },
  { name: 'protocol', under: 'src/protocol/' },
  { name: 'contracts', under: 'src/contracts/' },
  { name: 'core', under: 'src/server/core/' },
  { name: 'services', under: 'src/server/services/' },
  { name: 'adapters', under: 'src/server/adapters/' },
  { name: 'api', under: 'src/server/api/' },
  { name: 'app', under: 'src/app/' },
  { name: 'agent', under: 'src/agent/' },
  { name: 'workers', under: 'src/workers/' },
  { name: 'ml', under: 'src/ml/' },
];

export const RULES = {
  'composition-root': {
    summary: 'src/server/main.ts and src/server/runtime.ts are the composition root: they may import everything.',
    imports: 'any',
    packages: 'any',
    builtins: 'any',
  },

  'server-support': {
    summary:
      'src/server/env.ts and src/server/dashboard-build.ts serve the composition root: they import src/server/core, ' +
      'src/protocol, zod and node: modules, nothing else of the server.',
    imports: [{ zone: 'core' }, { zone: 'protocol' }],
    packages: { allow: ['zod'] },
    builtins: 'any',
    advice: {
      default: 'leave wiring to src/server/runtime.ts; this file only reads configuration or builds the dashboard.',
    },
  },

  protocol: {
    summary:
      'src/protocol is the wire format shared by agent and server: it imports only src/protocol and zod, and no ' +
      'node: modules, so it runs in the agent, the server, workers and the browser alike.',
    imports: [{ zone: 'protocol' }],
    packages: { allow: ['zod'] },
    builtins: 'none',
    advice: {
      default: 'keep the protocol self-contained: move what it needs into src/protocol, or move the code that needs the other module out of it.',
      builtin: 'use Uint8Array, DataView and TextEncoder/TextDecoder instead, and leave the I/O to the caller (an adapter or the agent).',
    },
  },

  contracts: {
    summary:
      'src/contracts holds what scripts/build-contracts.mjs generates from contracts/*.sol (ABI as const, bytecode): ' +
      'plain data that imports nothing, shared by the chain adapter and the Rewards page.',
    imports: [],
    packages: { allow: [] },
    builtins: 'none',
    advice: { default: 'generated files import nothing: change contracts/*.sol and run node scripts/build-contracts.mjs.' },
  },

  core: {
    summary:
      'src/server/core is the pure domain: it imports only src/server/core, src/protocol, zod and viem (its pure ' +
      'hashing and encoding for the settlement Merkle tree, never its clients). No I/O: no node: ' +
      'modules, ws, @prisma/*, better-sqlite3, next or tRPC; no src/ml; never services, adapters or api.',
    imports: [{ zone: 'core' }, { zone: 'protocol' }],
    packages: { allow: ['zod', 'viem'] },
    builtins: 'none',
    advice: {
      default: 'core must not know who uses it: move the type or function into src/server/core (or src/protocol) and import it from there.',
      builtin:
        'declare what core needs as a port in src/server/core/ports.ts, implement it in src/server/adapters and wire it in ' +
        'src/server/runtime.ts; time and randomness come in on events or through ports.',
      package:
        'declare what core needs as a port in src/server/core/ports.ts and implement it with this library in src/server/adapters.',
      services: 'dependencies point inward: move this type into src/server/core (for example types.ts) and let services import it from core.',
      adapters: 'declare the interface core needs in src/server/core/ports.ts; the adapter implements it and runtime.ts wires it.',
      ml: 'pass what core needs from the model (names, sizes) as plain data defined in src/server/core.',
    },
  },

  services: {
    summary:
      'src/server/services are use cases: they import src/server/services, src/server/core, src/protocol and zod, and ' +
      'receive all I/O as ports passed in; never adapters, api, ws, Prisma or node: modules.',
    imports: [{ zone: 'services' }, { zone: 'core' }, { zone: 'protocol' }],
    packages: { allow: ['zod'] },
    builtins: 'none',
    advice: {
      default: 'services see only core, protocol and other services.',
      adapters:
        'depend on a port type in src/server/core/ports.ts (move the interface there, the adapter implements it) and let ' +
        'src/server/runtime.ts pass the adapter in.',
      api: 'services must not know the transport: return data and let the router or REST facade shape it.',
      builtin: 'take this I/O through a port (src/server/core/ports.ts) implemented in src/server/adapters.',
      package: 'take this through a port (src/server/core/ports.ts) implemented with the library in src/server/adapters.',
    },
  },

  adapters: {
    summary:
      'src/server/adapters hold the I/O: an adapter imports src/server/core (ports, types), src/protocol, src/ml, ' +
      'src/workers and libraries; never services, api, app or agent, and never another adapter (files inside one ' +
      "adapter's own folder, such as adapters/db/*, may import each other).",
    imports: [
      { zone: 'core' },
      { zone: 'protocol' },
      // The evaluator adapter runs the tfjs model code in a worker: src/ml is an in-repo library to it.
      { zone: 'ml' },
      // The aggregator and evaluator pools own worker_threads: they spawn src/workers entries (new URL(...)) and
      // run the same wasm kernel on the main thread.
      { zone: 'workers' },
      // The chain adapter deploys and calls the contract with the generated ABI and bytecode.
      { zone: 'contracts' },
      { zone: 'adapters', sameAdapter: true },
    ],
    packages: { deny: ['next', 'react', 'react-dom', '@tanstack/*', '@trpc/*'] },
    builtins: 'any',
    advice: {
      default: 'adapters implement ports declared in core; they never call up into use cases or transports.',
      services: 'move the type this adapter needs into src/server/core (ports.ts or types.ts); services and adapters both import it from core.',
      api: 'move the type into src/server/core; the adapter must not know the transport.',
      adapters:
        'adapters never import each other: move what both need into src/server/core (a type or pure function) or src/protocol, ' +
        'or take the other adapter as a port and let src/server/runtime.ts wire them.',
      package: 'the server serves the dashboard and tRPC from the composition root and api, not from adapters.',
    },
  },

  api: {
    summary:
      'src/server/api is the tRPC and REST glue: it imports src/server/api, src/server/core, src/protocol, type-only ' +
      'src/server/services, @trpc/server, zod and type-only node: modules; never adapters, @prisma/* or ws.',
    imports: [{ zone: 'api' }, { zone: 'core' }, { zone: 'protocol' }, { zone: 'services', typeOnly: true }],
    packages: { allow: ['@trpc/server', 'zod'] },
    builtins: 'type',
    advice: {
      default: 'a procedure validates input, calls one service and returns a DTO.',
      services: 'import the service type with `import type` and reach the instance through the tRPC context (ctx), built in src/server/runtime.ts.',
      adapters: 'reach I/O through a service on the context (ctx), built in src/server/runtime.ts; import only the service type.',
      builtin: 'the HTTP server lives in src/server/main.ts and runtime.ts; the REST facade may only use node:http types.',
      package: '@prisma/* and ws belong in src/server/adapters; call a service that uses the repository or gateway port.',
    },
  },

  app: {
    summary:
      'src/app is presentation: it imports src/app, the AppRouter type (import type from src/server/api/root.ts), ' +
      'type-only DTOs from src/server/core/types.ts and src/server/core/events.ts, and browser libraries.',
    imports: [
      { zone: 'app' },
      { path: 'src/server/api/root.ts', typeOnly: true },
      // Pure DTO/type modules the dashboard renders today (snapshots, metric points, log lines, session events).
      { path: 'src/server/core/types.ts', typeOnly: true },
      { path: 'src/server/core/events.ts', typeOnly: true },
      // The Rewards page sends claims with the generated ABI.
      { zone: 'contracts' },
    ],
    packages: { allow: ['react', 'react-dom', 'next', '@tanstack/react-query', '@trpc/client', '@trpc/tanstack-react-query', 'wagmi', 'viem', 'zod', 'swagger-ui-react'] },
    builtins: 'none',
    advice: {
      default:
        'use `import type` from src/server/api/root.ts (derive shapes with inferRouterOutputs<AppRouter>) or from the DTO ' +
        'modules src/server/core/types.ts and events.ts; move a type the page needs there if it lives elsewhere.',
      builtin: 'pages run in the browser: fetch data through tRPC instead.',
      package: 'pages run in the browser: reach server libraries through a tRPC procedure.',
    },
  },

  agent: {
    summary:
      'src/agent is the node agent: it imports src/agent, src/protocol, src/ml and libraries; never src/server ' +
      '(the agent ships and runs without the coordinator).',
    imports: [{ zone: 'agent' }, { zone: 'protocol' }, { zone: 'ml' }],
    packages: { deny: SERVER_AND_BROWSER_PACKAGES },
    builtins: 'any',
    advice: {
      default:
        'move what the agent shares with the server into src/protocol (wire messages, assignments, close codes) or src/ml ' +
        '(data and shard math), and import it from there in both.',
      package: 'the agent never needs server or browser libraries.',
    },
  },

  workers: {
    summary:
      'src/workers are thin worker_threads entries: they import src/workers, src/ml, src/protocol and src/server/core; ' +
      'never services, adapters, api, app or agent.',
    imports: [{ zone: 'workers' }, { zone: 'ml' }, { zone: 'protocol' }, { zone: 'core' }],
    packages: { deny: SERVER_AND_BROWSER_PACKAGES },
    builtins: 'any',
    advice: {
      default: 'put the logic in src/server/core or src/ml and keep the worker a thin parentPort wrapper around it.',
      package: 'workers only compute; persistence and transport stay in the main thread.',
    },
  },

  ml: {
    summary:
      'src/ml is the TensorFlow.js code shared by the agent and the evaluator: it imports src/ml, src/protocol, ' +
      'type-only src/server/core and libraries; never services, adapters, api, app, agent or workers.',
    imports: [{ zone: 'ml' }, { zone: 'protocol' }, { zone: 'core', typeOnly: true }],
    packages: { deny: SERVER_AND_BROWSER_PACKAGES },
    builtins: 'any',
    advice: {
      default: 'src/ml is a library: take what it needs as arguments, or move shared types into src/protocol.',
      core: 'import core types with `import type`, or move the function into src/ml.',
      package: 'src/ml never needs server or browser libraries.',
    },
  },
};

/** What every zone must obey, whatever its import list says. */
export const GLOBAL_RULES = {
  'no-cycle':
    'no circular imports in src/: a cycle of runtime imports means modules that load half-initialised and cannot be ' +
    'understood, tested or moved apart. Type-only imports are not runtime edges and do not count.',
  'unzoned-file': 'every source file under src/ belongs to a zone in scripts/architecture-rules.mjs.',
  'unresolved-import': 'every relative import resolves to a file.',
};
