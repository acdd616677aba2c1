// The architecture checker (scripts/check-architecture.mjs) run on small synthetic trees, so we know each rule
// fires on a violation and stays quiet on allowed imports: a lint that never fails protects nothing.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { checkArchitecture, collectImports, formatReport, type KnownViolation } from '../../scripts/check-architecture.mjs';

const roots: string[] = [];

/** Writes files (path relative to the root -> contents) into a fresh temporary directory. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'arch-rules-'));
  roots.push(root);
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return root;
}

function check(files: Record<string, string>, knownViolations: KnownViolation[] = []) {
  return checkArchitecture({ root: tree(files), knownViolations });
}

afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

describe('architecture rules', () => {
  it('reports a core file that imports node:fs', () => {
    const result = check({
      'src/server/core/round.ts': "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n",
    });
    expect(result.fresh).toHaveLength(1);
    expect(result.fresh[0]).toMatchObject({ rule: 'zone/core', from: 'src/server/core/round.ts', to: 'node:fs' });
    const report = formatReport(result);
    // The message names the file, the import, the rule and what to do instead.
    expect(report).toContain("src/server/core/round.ts imports node:fs [line 1: 'node:fs']");
    expect(report).toContain('rule zone/core:');
    expect(report).toContain('instead: declare what core needs as a port in src/server/core/ports.ts');
    expect(report).toContain('architecture: FAILED');
  });

  it('reports I/O libraries in core, bare built-ins included, and allows zod and protocol', () => {
    const result = check({
      'src/protocol/errors.ts': 'export class ProtocolError extends Error {}\n',
      'src/server/core/a.ts': [
        "import { WebSocket } from 'ws';",
        "import { PrismaClient } from '@prisma/client';",
        "import type { Stats } from 'fs';",
        "import { z } from 'zod';",
        "import { ProtocolError } from '../../protocol/errors';",
        'export const all = [WebSocket, PrismaClient, z, ProtocolError];',
        'export type S = Stats;',
      ].join('\n'),
    });
    expect(result.fresh.map((v) => v.to).sort()).toEqual(['@prisma/client', 'node:fs', 'ws']);
  });

  it('reports a services file that imports an adapter, even type-only', () => {
    const result = check({
      'src/server/adapters/event-bus.ts': 'export class EventBus {}\n',
      'src/server/core/ports.ts': 'export interface Clock { now(): number }\n',
      'src/server/services/control.ts': [
        "import type { EventBus } from '../adapters/event-bus';",
        "import type { Clock } from '../core/ports';",
        'export type Deps = { bus: EventBus; clock: Clock };',
      ].join('\n'),
    });
    expect(result.fresh).toHaveLength(1);
    expect(result.fresh[0]).toMatchObject({
      rule: 'zone/services',
      from: 'src/server/services/control.ts',
      to: 'src/server/adapters/event-bus.ts',
    });
    expect(formatReport(result)).toContain('instead: depend on a port type in src/server/core/ports.ts');
  });

  it('reports a two-file import cycle, but not a cycle of type-only imports', () => {
    const result = check({
      'src/protocol/a.ts': "import { b } from './b';\nexport const a = () => b;\n",
      'src/protocol/b.ts': "import { a } from './a';\nexport const b = () => a;\n",
      'src/protocol/c.ts': "import type { D } from './d';\nexport type C = { d?: D };\n",
      'src/protocol/d.ts': "import type { C } from './c';\nexport type D = { c?: C };\n",
    });
    expect(result.fresh).toHaveLength(1);
    expect(result.fresh[0]).toMatchObject({ rule: 'no-cycle', members: ['src/protocol/a.ts', 'src/protocol/b.ts'] });
    expect(formatReport(result)).toContain('circular import: src/protocol/a.ts -> src/protocol/b.ts -> src/protocol/a.ts');
  });

  it('lets files of one adapter import each other, but not another adapter', () => {
    const result = check({
      'src/server/adapters/db/repo.ts': "import { migrate } from './migrate';\nexport const repo = migrate;\n",
      'src/server/adapters/db/migrate.ts': 'export const migrate = 1;\n',
      'src/server/adapters/clock.ts': "import { repo } from './db/repo';\nexport const clock = repo;\n",
    });
    expect(result.fresh.map((v) => `${v.from} -> ${v.to}`)).toEqual(['src/server/adapters/clock.ts -> src/server/adapters/db/repo.ts']);
  });

  it('allows api to import services only as types, and app only the AppRouter type', () => {
    const result = check({
      'src/server/services/control.ts': 'export class Control {}\n',
      'src/server/api/root.ts': "import type { Control } from '../services/control';\nexport type AppRouter = { c: Control };\n",
      'src/server/api/rest.ts': "import { Control } from '../services/control';\nexport const c = new Control();\n",
      'src/app/page.tsx': "import type { AppRouter } from '../server/api/root';\nexport type R = AppRouter;\n",
      'src/app/bad.tsx': "import { c } from '../server/api/rest';\nexport const d = c;\n",
    });
    expect(result.fresh.map((v) => `${v.rule} ${v.from} -> ${v.to}`).sort()).toEqual([
      'zone/api src/server/api/rest.ts -> src/server/services/control.ts',
      'zone/app src/app/bad.tsx -> src/server/api/rest.ts',
    ]);
  });

  it('tolerates listed violations and reports listed entries that no longer occur', () => {
    const files = {
      'src/server/core/a.ts': "import { x } from '../services/s';\nexport const a = x;\n",
      'src/server/services/s.ts': 'export const x = 1;\n',
    };
    const known: KnownViolation[] = [
      { rule: 'zone/core', from: 'src/server/core/a.ts', to: 'src/server/services/s.ts' },
      { rule: 'zone/core', from: 'src/server/core/gone.ts', to: 'src/server/services/s.ts' },
    ];
    const result = check(files, known);
    expect(result.fresh).toEqual([]);
    expect(result.known.map((v) => v.from)).toEqual(['src/server/core/a.ts']);
    expect(result.stale).toEqual([known[1]]);
    expect(formatReport(result)).toMatch(/1 stale allow-list entry .*delete it/);
  });

  it('reports files outside every zone and relative imports that resolve to nothing', () => {
    const result = check({ 'src/misc/x.ts': 'export const x = 1;\n', 'src/ml/y.ts': "export * from './missing';\n" });
    expect(result.fresh.map((v) => v.rule).sort()).toEqual(['unresolved-import', 'unzoned-file']);
  });
});

describe('collectImports', () => {
  it('tells type-only imports from runtime ones and finds dynamic, require and worker URL imports', () => {
    const found = collectImports(
      'x.ts',
      [
        "import type { A } from './a';",
        "import { type B, type C } from './b';",
        "import { type D, e } from './d';",
        "export type { F } from './f';",
        "export * from './g';",
        "type H = import('./h').H;",
        "const i = await import('./i');",
        "const load = createRequire(import.meta.url);",
        "load('some-package');",
        "const w = new URL('../workers/w.ts', import.meta.url);",
        "import './side-effect.css';",
      ].join('\n'),
    );
    expect(found.map((f) => `${f.specifier} ${f.kind}`)).toEqual([
      './a type',
      './b type',
      './d value',
      './f type',
      './g value',
      './h type',
      './i dynamic',
      'some-package dynamic',
      '../workers/w.ts url',
      './side-effect.css value',
    ]);
  });
});
