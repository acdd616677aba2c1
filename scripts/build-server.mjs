// Bundles the server entry and its worker-thread entries to plain JavaScript in .build/server/, so `npm start`,
// the tests and the benchmarks run the coordinator without tsx's loader in every thread (issue 9: the loader and
// its transform caches cost tens of MB per thread). About a second of esbuild; run on every start, it writes only
// the files whose bytes changed, so concurrent starts (parallel tests) never see a half-written file.
//
//   node scripts/build-server.mjs          (npm start runs it; `npm run dev` keeps the tsx path)
//
// What stays outside the bundle: every npm package but viem and its own dependencies (BUNDLED_PACKAGES): next,
// prisma's runtime, tfjs and its wasm files, native addons resolve from node_modules exactly as under tsx. Our own
// sources are bundled, and each keeps the location it had as a source file: in every bundled module, `import.meta.url` is rewritten to
// that module's source URL (computed from the bundle's own location, so a moved checkout still works), so
// `new URL('../../x.wasm', import.meta.url)`, `createRequire(import.meta.url)` and "am I the main module" checks
// resolve as they do under tsx. Worker entries (`new URL('…/x.worker.ts', import.meta.url)`) are the exception:
// they point at their bundled sibling here instead, which spawnWorker starts without tsx.
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const SERVER_BUILD_DIR = path.join(ROOT, '.build', 'server');
export const SERVER_BUNDLE = path.join(SERVER_BUILD_DIR, 'main.mjs');

/** The bundles: the server entry and each worker_threads entry it spawns (src/workers/*.worker.ts). */
const ENTRIES = {
  main: 'src/server/main.ts',
  'aggregator.worker': 'src/workers/aggregator.worker.ts',
  'evaluator.worker': 'src/workers/evaluator.worker.ts',
  'auditor.worker': 'src/workers/auditor.worker.ts',
};

const WORKER_OUTPUT = new Map(
  Object.entries(ENTRIES)
    .filter(([name]) => name.endsWith('.worker'))
    .map(([name, source]) => [path.join(ROOT, source), `./${name}.mjs`]),
);

const SOURCE_ROOT = path.join(ROOT, 'src') + path.sep;
/** A placeholder for the bundle's own import.meta.url while the source's are being rewritten. */
const BUNDLE_URL = '__hypergpu_bundle_url__';
const URL_OF_LITERAL = /new URL\(\s*(['"])([^'"]+)\1\s*,\s*import\.meta\.url\s*\)/g;

/** esbuild plugin: keeps each bundled source's own location (see the file comment). */
const sourceLocations = {
  name: 'source-locations',
  setup(build) {
    build.onLoad({ filter: /\.(?:ts|tsx|mts|js|mjs)$/ }, (args) => {
      if (!args.path.startsWith(SOURCE_ROOT)) return undefined;
      let text = readFileSync(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return undefined;
      const dir = path.dirname(args.path);
      text = text.replace(URL_OF_LITERAL, (whole, _quote, relative) => {
        const worker = WORKER_OUTPUT.get(path.resolve(dir, relative));
        return worker ? `new URL(${JSON.stringify(worker)}, ${BUNDLE_URL})` : whole;
      });
      const fromBuild = path.relative(SERVER_BUILD_DIR, args.path).split(path.sep).join('/');
      text = text.replaceAll('import.meta.url', `new URL(${JSON.stringify(fromBuild)}, ${BUNDLE_URL}).href`);
      // What remains is the bundle's own URL, from which the rewritten ones are computed.
      text = text.replaceAll(BUNDLE_URL, 'import.meta.url');
      return { contents: text, loader: path.extname(args.path).slice(1).replace(/^m/, '') || 'ts', resolveDir: dir };
    });
  },
};

/**
 * Packages bundled in (tree-shaken) rather than loaded from node_modules: viem's root entry re-exports all of it,
 * and loading it whole cost the idle coordinator about 40 MB of RSS (180 -> 140 MB, bench/memory.ts) for the few
 * functions it uses (signature recovery, keccak, a client when a chain is configured). Pure ESM, no files read at
 * run time, so bundling it changes nothing else.
 */
const BUNDLED_PACKAGES = /^(?:viem|ox|abitype|@noble\/curves|@noble\/hashes|@scure\/base|@scure\/bip32|@scure\/bip39)(?:\/|$)/;

/** esbuild plugin: every other npm package stays external, loaded by Node from node_modules as under tsx. */
const externalPackages = {
  name: 'external-packages',
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith('node:') || BUNDLED_PACKAGES.test(args.path)) return undefined;
      return { path: args.path, external: true };
    });
  },
};

/** Builds the bundles; writes a file only when its bytes changed (atomically, by rename). Returns what was written. */
export async function buildServer({ quiet = false, stopService = false } = {}) {
  const esbuild = await import('esbuild');
  const started = Date.now();
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: ENTRIES,
    outdir: SERVER_BUILD_DIR,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'linked',
    // Function and class names survive bundling, so logs and errors that print them read as under tsx.
    keepNames: true,
    write: false,
    logLevel: 'warning',
    plugins: [externalPackages, sourceLocations],
    tsconfig: path.join(ROOT, 'tsconfig.json'),
  });
  // esbuild's service is a child process; a caller that goes on to run the server in this process stops it.
  if (stopService) await esbuild.stop();
  mkdirSync(SERVER_BUILD_DIR, { recursive: true });
  const written = [];
  for (const file of result.outputFiles) {
    if (existsSync(file.path)) {
      const current = readFileSync(file.path);
      if (Buffer.compare(current, file.contents) === 0) continue;
    }
    const temp = `${file.path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    writeFileSync(temp, file.contents);
    renameSync(temp, file.path);
    written.push(path.relative(ROOT, file.path));
  }
  if (!quiet && written.length > 0) process.stdout.write(`Server bundle: ${written.filter((f) => f.endsWith('.mjs')).length} file(s) rebuilt in ${Date.now() - started} ms (.build/server)\n`);
  return written;
}

export const SERVER_BUNDLE_URL = pathToFileURL(SERVER_BUNDLE).href;

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  buildServer().catch((error) => {
    process.stderr.write(`server bundle failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
