// Types for scripts/check-architecture.mjs, so tests/unit/architecture-rules.test.ts typechecks (allowJs is off).
export type ImportKind = 'value' | 'type' | 'dynamic' | 'url';

export interface FoundImport {
  specifier: string;
  kind: ImportKind;
  line: number;
}

export interface Edge extends FoundImport {
  from: string;
  target: 'file' | 'builtin' | 'package' | 'unresolved';
  to: string;
}

export type AllowEntry = { zone?: string; path?: string; typeOnly?: boolean; sameAdapter?: boolean };
export type PackageRule = 'any' | { allow: string[] } | { deny: string[] };

export interface ZoneRule {
  summary: string;
  imports: 'any' | AllowEntry[];
  packages: PackageRule;
  builtins: 'any' | 'type' | 'none';
  advice?: Record<string, string>;
}

export interface Zone {
  name: string;
  files?: string[];
  under?: string;
}

export type KnownViolation = { rule: string; from: string; to: string } | { rule: 'no-cycle'; members: string[] };

export interface Violation {
  rule: string;
  from?: string;
  to?: string;
  members?: string[];
  path?: string[];
  imports?: FoundImport[];
  summary: string;
  advice: string;
}

export interface CheckResult {
  violations: Violation[];
  known: Violation[];
  fresh: Violation[];
  stale: KnownViolation[];
  files: number;
  imports: number;
  ms: number;
}

export function collectImports(fileName: string, text: string): FoundImport[];
export function zoneOf(rel: string, zones?: Zone[]): string | null;
export function adapterOf(rel: string): string;
export function buildGraph(root: string): { files: string[]; edges: Edge[] };
export function findCycles(nodes: string[], edges: { from: string; to: string }[]): { members: string[]; path: string[] }[];
export function checkArchitecture(options: {
  root: string;
  rules?: Record<string, ZoneRule>;
  zones?: Zone[];
  knownViolations?: KnownViolation[];
}): CheckResult;
export function formatReport(result: CheckResult, options?: { verbose?: boolean }): string;
