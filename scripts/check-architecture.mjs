// `npm run lint:arch`: the import rules of shared/notes/architecture.md, checked by a machine.
//
// Reads every source file under src/ with the TypeScript parser (the `typescript` package the project already
// pins, so nothing new to install and nothing that needs a newer Node), lists its imports, resolves them the way
// tsc does (tsconfig's moduleResolution and paths), and checks each one against the zone rules in
// scripts/architecture-rules.mjs. Then looks for circular imports (Tarjan's strongly connected components).
// Violations listed in scripts/architecture-known-violations.mjs are reported but tolerated; any other violation,
// and any listed entry that no longer occurs, fails the run, so that list can only shrink.
//
// What counts as an import: import/export ... from, import x = require(), dynamic import(), require() and
// createRequire() aliases called with a literal, `import('x').T` types, and `new URL('./file.ts', import.meta.url)`
// pointing at a source file (how adapters spawn worker entries). `import type`, `export type`, imports whose every
// name is `type`, and `import('x').T` are type-only: erased at build, so they never make a runtime edge.
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

import { KNOWN_VIOLATIONS } from './architecture-known-violations.mjs';
import { GLOBAL_RULES, RULES, ZONES } from './architecture-rules.mjs';

const SOURCE_FILE = /\.(?:ts|tsx|mts|cts)$/;
const BUILTINS = new Set(builtinModules);
const KNOWN_LIST_PATH = 'scripts/architecture-known-violations.mjs';

/** Imports of one file: { specifier, kind: 'value' | 'type' | 'dynamic' | 'url', line }. */
export function collectImports(fileName, text) {
  const kind = fileName.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS;
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, kind);
  const found = [];
  const requireNames = new Set(['require']);
  const add = (node, specifier, importKind) =>
    found.push({ specifier, kind: importKind, line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1 });
  const isCreateRequireCall = (node) =>
    ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'createRequire';
  const isImportMetaUrl = (node) =>
    ts.isPropertyAccessExpression(node) && ts.isMetaProperty(node.expression) && node.name.text === 'url';

  function visit(node) {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const typeOnly =
        !!clause &&
        (clause.isTypeOnly ||
          (!clause.name &&
            !!clause.namedBindings &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node, node.moduleSpecifier.text, typeOnly ? 'type' : 'value');
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const exported = node.exportClause;
      const typeOnly =
        node.isTypeOnly ||
        (!!exported && ts.isNamedExports(exported) && exported.elements.length > 0 && exported.elements.every((e) => e.isTypeOnly));
      add(node, node.moduleSpecifier.text, typeOnly ? 'type' : 'value');
    } else if (
      ts.isImportEqualsDeclaration(node) &&
      ts.isExternalModuleReference(node.moduleReference) &&
      ts.isStringLiteral(node.moduleReference.expression)
    ) {
      add(node, node.moduleReference.expression.text, node.isTypeOnly ? 'type' : 'value');
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      add(node, node.argument.literal.text, 'type');
    } else if (ts.isCallExpression(node) && node.arguments.length > 0 && ts.isStringLiteralLike(node.arguments[0])) {
      const callee = node.expression;
      if (
        callee.kind === ts.SyntaxKind.ImportKeyword ||
        (ts.isIdentifier(callee) && requireNames.has(callee.text)) ||
        isCreateRequireCall(callee)
      ) {
        add(node, node.arguments[0].text, 'dynamic');
      }
    } else if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer && isCreateRequireCall(node.initializer)) {
      requireNames.add(node.name.text);
    } else if (
      ts.isNewExpression(node) &&
      ts.isIdentifier(node.expression) &&
      node.expression.text === 'URL' &&
      node.arguments?.length === 2 &&
      ts.isStringLiteralLike(node.arguments[0]) &&
      isImportMetaUrl(node.arguments[1])
    ) {
      add(node, node.arguments[0].text, 'url');
    }
    ts.forEachChild(node, visit);
  }
  visit(source);
  return found;
}

function listSourceFiles(dir) {
  const files = [];
  if (!existsSync(dir)) return files;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...listSourceFiles(full));
    else if (entry.isFile() && SOURCE_FILE.test(entry.name)) files.push(full);
  }
  return files.sort();
}

function readCompilerOptions(root) {
  const configPath = path.join(root, 'tsconfig.json');
  const fallback = { module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, jsx: ts.JsxEmit.ReactJSX };
  if (!existsSync(configPath)) return fallback;
  const { config, error } = ts.readConfigFile(configPath, ts.sys.readFile);
  if (error) throw new Error(`cannot read ${configPath}: ${ts.flattenDiagnosticMessageText(error.messageText, '\n')}`);
  // Only the options matter here, not the file list.
  return ts.parseJsonConfigFileContent({ ...config, include: [], files: [] }, ts.sys, root).options;
}

const toPosix = (p) => p.split(path.sep).join('/');

function packageName(specifier) {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

export function zoneOf(rel, zones = ZONES) {
  for (const zone of zones) {
    if (zone.files?.includes(rel) || (zone.under && rel.startsWith(zone.under))) return zone.name;
  }
  return rel.startsWith('src/') ? null : 'outside-src';
}

/** Adapter identity: the first path segment under src/server/adapters/ (a folder, or a single file). */
export function adapterOf(rel) {
  const rest = rel.slice('src/server/adapters/'.length);
  const first = rest.split('/')[0];
  return rest.includes('/') ? first : first.replace(SOURCE_FILE, '');
}

/** Reads src/ and resolves every import: { files, edges } with paths relative to root, posix separators. */
export function buildGraph(root) {
  const options = readCompilerOptions(root);
  const cache = ts.createModuleResolutionCache(root, (s) => s, options);
  const hasPathMapping = !!options.paths && Object.keys(options.paths).length > 0;
  const files = listSourceFiles(path.join(root, 'src'));
  const edges = [];
  for (const file of files) {
    const from = toPosix(path.relative(root, file));
    for (const { specifier, kind, line } of collectImports(file, readFileSync(file, 'utf8'))) {
      const target = resolveTarget(specifier, kind, file);
      if (target) edges.push({ from, specifier, kind, line, ...target });
    }
  }
  return { files: files.map((f) => toPosix(path.relative(root, f))), edges };

  function resolveTarget(specifier, kind, file) {
    const relative = specifier.startsWith('.') || specifier.startsWith('/');
    if (kind === 'url') {
      // new URL(x, import.meta.url) is a dependency only when it names a source file (a worker entry); data files
      // (wasm, migrations) and directories are not.
      if (!relative) return null;
      const target = path.resolve(path.dirname(file), specifier);
      return SOURCE_FILE.test(target) && existsSync(target) ? { target: 'file', to: toPosix(path.relative(root, target)) } : null;
    }
    if (specifier.startsWith('node:') || BUILTINS.has(specifier)) {
      return { target: 'builtin', to: specifier.startsWith('node:') ? specifier : `node:${specifier}` };
    }
    if (relative || hasPathMapping) {
      const resolved = ts.resolveModuleName(specifier, file, options, ts.sys, cache).resolvedModule;
      if (resolved && !resolved.isExternalLibraryImport) {
        return { target: 'file', to: toPosix(path.relative(root, resolved.resolvedFileName)) };
      }
      if (relative) {
        // Assets the bundler handles (CSS, wasm, JSON without resolveJsonModule): the file itself.
        const asset = path.resolve(path.dirname(file), specifier);
        if (existsSync(asset) && statSync(asset).isFile()) return { target: 'file', to: toPosix(path.relative(root, asset)) };
        return { target: 'unresolved', to: specifier };
      }
    }
    return { target: 'package', to: packageName(specifier) };
  }
}

function packageMatches(pattern, name) {
  return pattern.endsWith('/*') ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

function adviceFor(rule, key) {
  return rule.advice?.[key] ?? rule.advice?.default ?? '';
}

/** The import rule violations of one edge, or null when it is allowed. */
function checkEdge(edge, fromZone, rules, zones) {
  const rule = rules[fromZone];
  const ruleId = `zone/${fromZone}`;
  const typeOnly = edge.kind === 'type';
  const violation = (advice) => ({ rule: ruleId, from: edge.from, to: edge.to, summary: rule.summary, advice });
  if (edge.target === 'unresolved') {
    return { rule: 'unresolved-import', from: edge.from, to: edge.to, summary: GLOBAL_RULES['unresolved-import'], advice: 'fix the path.' };
  }
  if (edge.target === 'builtin') {
    if (rule.builtins === 'any' || (rule.builtins === 'type' && typeOnly)) return null;
    return violation(adviceFor(rule, 'builtin'));
  }
  if (edge.target === 'package') {
    const p = rule.packages;
    if (p === 'any') return null;
    if (p.allow && p.allow.some((pattern) => packageMatches(pattern, edge.to))) return null;
    if (p.deny && !p.deny.some((pattern) => packageMatches(pattern, edge.to))) return null;
    return violation(adviceFor(rule, 'package'));
  }
  if (rule.imports === 'any') return null;
  const toZone = zoneOf(edge.to, zones);
  const allowed = rule.imports.some(
    (entry) =>
      (entry.zone ? entry.zone === toZone : entry.path === edge.to) &&
      (!entry.typeOnly || typeOnly) &&
      (!entry.sameAdapter || adapterOf(edge.from) === adapterOf(edge.to)),
  );
  if (allowed) return null;
  return violation(adviceFor(rule, toZone ?? 'default'));
}

/** Strongly connected components with more than one file (or a file importing itself), by Tarjan's algorithm. */
export function findCycles(nodes, edges) {
  const next = new Map(nodes.map((n) => [n, []]));
  for (const { from, to } of edges) if (next.has(from) && next.has(to)) next.get(from).push(to);
  let counter = 0;
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  // Iterative, so a long import chain cannot overflow the call stack.
  for (const start of nodes) {
    if (index.has(start)) continue;
    const work = [[start, 0]];
    index.set(start, counter);
    low.set(start, counter++);
    stack.push(start);
    onStack.add(start);
    while (work.length) {
      const frame = work[work.length - 1];
      const [node, i] = frame;
      const targets = next.get(node);
      if (i < targets.length) {
        frame[1]++;
        const target = targets[i];
        if (!index.has(target)) {
          index.set(target, counter);
          low.set(target, counter++);
          stack.push(target);
          onStack.add(target);
          work.push([target, 0]);
        } else if (onStack.has(target)) {
          low.set(node, Math.min(low.get(node), index.get(target)));
        }
        continue;
      }
      work.pop();
      if (work.length) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(node)));
      }
      if (low.get(node) === index.get(node)) {
        const component = [];
        let member;
        do {
          member = stack.pop();
          onStack.delete(member);
          component.push(member);
        } while (member !== node);
        if (component.length > 1 || targets.includes(node)) components.push(component.sort());
      }
    }
  }
  return components.map((members) => ({ members, path: shortestCycle(members, next) }));
}

/** One concrete cycle through a component, for the report: a -> b -> a. */
function shortestCycle(members, next) {
  const inside = new Set(members);
  const start = members[0];
  const previous = new Map([[start, null]]);
  const queue = [start];
  while (queue.length) {
    const node = queue.shift();
    for (const target of next.get(node)) {
      if (!inside.has(target)) continue;
      if (target === start) {
        const route = [start];
        for (let n = node; n !== start; n = previous.get(n)) route.splice(1, 0, n);
        return [...route, start];
      }
      if (!previous.has(target)) {
        previous.set(target, node);
        queue.push(target);
      }
    }
  }
  return [start, start];
}

const keyOf = (v) => (v.rule === 'no-cycle' ? `no-cycle ${v.members.join(' ')}` : `${v.rule} ${v.from} -> ${v.to}`);

/**
 * Checks the tree under root. Returns every violation, split into the ones the allow-list tolerates (`known`) and
 * the ones it does not (`fresh`), plus allow-list entries that match nothing any more (`stale`).
 */
export function checkArchitecture({ root, rules = RULES, zones = ZONES, knownViolations = KNOWN_VIOLATIONS }) {
  const started = performance.now();
  const { files, edges } = buildGraph(root);
  const byKey = new Map();
  for (const file of files) {
    if (zoneOf(file, zones) === null) {
      const v = { rule: 'unzoned-file', from: file, to: file, summary: GLOBAL_RULES['unzoned-file'], advice: 'add the file to a zone, or move it into one.' };
      byKey.set(keyOf(v), { ...v, imports: [] });
    }
  }
  for (const edge of edges) {
    const fromZone = zoneOf(edge.from, zones);
    if (!fromZone) continue;
    const v = checkEdge(edge, fromZone, rules, zones);
    if (!v) continue;
    const key = keyOf(v);
    if (!byKey.has(key)) byKey.set(key, { ...v, imports: [] });
    byKey.get(key).imports.push({ line: edge.line, specifier: edge.specifier, kind: edge.kind });
  }
  const runtimeEdges = edges.filter((e) => e.target === 'file' && e.kind !== 'type');
  for (const cycle of findCycles(files, runtimeEdges)) {
    const v = { rule: 'no-cycle', members: cycle.members, path: cycle.path, summary: GLOBAL_RULES['no-cycle'] };
    v.advice = 'break the cycle: move what both sides share into a third module they both import, or make one side `import type` only.';
    byKey.set(keyOf(v), v);
  }
  const violations = [...byKey.values()];
  const knownKeys = new Map(knownViolations.map((entry) => [keyOf(normaliseEntry(entry)), entry]));
  const known = violations.filter((v) => knownKeys.has(keyOf(v)));
  const fresh = violations.filter((v) => !knownKeys.has(keyOf(v)));
  const present = new Set(violations.map(keyOf));
  const stale = [...knownKeys].filter(([key]) => !present.has(key)).map(([, entry]) => entry);
  return {
    violations,
    known,
    fresh,
    stale,
    files: files.length,
    imports: edges.length,
    ms: Math.round(performance.now() - started),
  };
}

function normaliseEntry(entry) {
  return entry.rule === 'no-cycle' ? { rule: 'no-cycle', members: [...entry.members].sort() } : entry;
}

function describe(v) {
  if (v.rule === 'no-cycle') return `circular import: ${v.path.join(' -> ')}${v.members.length > v.path.length - 1 ? ` (component: ${v.members.join(', ')})` : ''}`;
  if (v.rule === 'unzoned-file') return `${v.from} is in no zone`;
  const imports = v.imports
    .map((i) => `line ${i.line}: '${i.specifier}'${i.kind === 'value' ? '' : ` (${i.kind === 'type' ? 'type-only' : i.kind})`}`)
    .join('; ');
  return `${v.from} imports ${v.to} [${imports}]`;
}

function entryText(v) {
  return v.rule === 'no-cycle'
    ? `{ rule: 'no-cycle', members: [${v.members.map((m) => `'${m}'`).join(', ')}] }`
    : `{ rule: '${v.rule}', from: '${v.from}', to: '${v.to}' }`;
}

export function formatReport(result, { verbose = false } = {}) {
  const lines = [];
  const full = (v) => {
    lines.push(`  ${describe(v)}`);
    lines.push(`    rule ${v.rule}: ${v.summary}`);
    if (v.advice) lines.push(`    instead: ${v.advice}`);
  };
  if (result.fresh.length) {
    lines.push(`${result.fresh.length} architecture violation(s):`);
    result.fresh.forEach(full);
  }
  if (result.stale.length) {
    lines.push(`${result.stale.length} stale allow-list entr${result.stale.length === 1 ? 'y' : 'ies'} (the violation is gone: delete ${result.stale.length === 1 ? 'it' : 'them'} from ${KNOWN_LIST_PATH}):`);
    for (const entry of result.stale) lines.push(`  ${entryText(normaliseEntry(entry))}`);
  }
  if (result.known.length) {
    lines.push(`${result.known.length} known violation(s) tolerated by ${KNOWN_LIST_PATH} (to be fixed; the list may only shrink):`);
    if (verbose) result.known.forEach(full);
    else for (const v of result.known) lines.push(`  ${describe(v)}`);
  }
  const ok = result.fresh.length === 0 && result.stale.length === 0;
  lines.push(
    `architecture: ${ok ? 'ok' : 'FAILED'}: ${result.files} files, ${result.imports} imports, ${result.fresh.length} new violation(s), ` +
      `${result.stale.length} stale allow-list entr${result.stale.length === 1 ? 'y' : 'ies'}, ${result.known.length} known, in ${result.ms} ms`,
  );
  return lines.join('\n');
}

if (process.argv[1] && realpathSync(path.resolve(process.argv[1])) === realpathSync(fileURLToPath(import.meta.url))) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const result = checkArchitecture({ root });
  const text = formatReport(result, { verbose: process.argv.includes('--verbose') });
  const ok = result.fresh.length === 0 && result.stale.length === 0;
  (ok ? process.stdout : process.stderr).write(`${text}\n`);
  process.exitCode = ok ? 0 : 1;
}
