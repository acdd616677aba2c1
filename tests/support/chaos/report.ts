// The chaos report: one table row per scenario, then what failed and why, and the measurements.
import type { Detection } from './analysis';
import type { BaselineResult, ScenarioResult } from './types';

const pct = (x: number | null) => (x === null ? '-' : `${(x * 100).toFixed(2)}%`);
const signed = (x: number | null) => (x === null ? '-' : `${x >= 0 ? '+' : ''}${x.toFixed(2)}`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function detectionSummary(ds: Detection[]): string {
  if (ds.length === 0) return '-';
  const by = (kind: 'silent' | 'closed') => ds.filter((d) => d.expect === kind);
  const parts: string[] = [];
  for (const kind of ['silent', 'closed'] as const) {
    const list = by(kind);
    if (!list.length) continue;
    const values = list.map((d) => (d.latencyMs === null ? 'never' : `${d.latencyMs}${d.source === 'poll' ? '~' : ''}`));
    parts.push(`${kind} ${values.join('/')}`);
  }
  return parts.join(', ');
}

function rejected(r: ScenarioResult): string {
  const entries = Object.entries(r.updates.rejectedByReason).sort((a, b) => b[1] - a[1]);
  return entries.length ? entries.map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
}

export function formatBaseline(b: BaselineResult): string {
  return (
    `baseline: ${b.ok ? 'ok' : `FAILED (${b.error?.split('\n')[0]})`}; ${b.config.agents} agents, seed ${b.config.seed}, ${b.config.maxSamples} samples, batch ${b.config.batchSize}/node; ` +
    `accuracy ${pct(b.accuracy)}, ${b.appliedRounds} rounds, median round ${b.medianRoundMs?.toFixed(0) ?? '-'} ms (p90 ${b.p90RoundMs?.toFixed(0) ?? '-'} ms), ` +
    `training ${seconds(b.trainingMs)}, run ${seconds(b.durationMs)}`
  );
}

export function formatReport(baseline: BaselineResult, results: ScenarioResult[]): string {
  const out: string[] = [formatBaseline(baseline), ''];
  out.push(
    table(
      ['scenario', 'result', 'time', 'rounds', 'failures detected (ms)', 'updates accepted', 'rejected by reason', 'accuracy (Δ pts)', 'ledger'],
      results.map((r) => [
        r.name,
        r.passed ? 'PASS' : 'FAIL',
        seconds(r.durationMs),
        r.appliedRounds === null ? '-' : `${r.appliedRounds}/${r.rounds}`,
        `${r.failuresDetected ?? '-'}${r.detections.length ? `: ${detectionSummary(r.detections)}` : ''}`,
        r.updates.accepted === null ? '-' : String(r.updates.accepted),
        rejected(r),
        `${pct(r.accuracy)} (${signed(r.deltaPoints)})`,
        r.ledger ? (r.ledger.ok ? 'ok' : 'PROBLEMS') : '-',
      ]),
    ),
  );
  out.push('', 'rounds = applied/total; ms values marked ~ are only known from polling.');
  for (const r of results) {
    out.push('', `${r.passed ? 'PASS' : 'FAIL'} ${r.name}: ${r.description}`);
    if (r.error) out.push(`  error: ${r.error.split('\n').slice(0, 6).join('\n         ')}`);
    for (const c of r.checks) out.push(`  ${c.ok ? 'ok  ' : c.informational ? 'info' : 'FAIL'} ${c.name}: ${c.detail}`);
    const metrics = Object.entries(r.metrics);
    if (metrics.length) out.push(`  measured: ${metrics.map(([k, v]) => `${k}=${typeof v === 'number' ? Math.round(v * 100) / 100 : v}`).join(', ')}`);
    for (const n of r.notes) out.push(`  note: ${n}`);
    if (r.ledger && !r.ledger.ok) out.push(`  ledger problems: ${r.ledger.problems.slice(0, 8).join('; ')}`);
  }
  const passed = results.filter((r) => r.passed).length;
  out.push('', `${passed} of ${results.length} scenarios passed`);
  return out.join('\n');
}

/** JSON-safe copy of the results (diagnostics trimmed). */
export function reportJson(baseline: BaselineResult, results: ScenarioResult[], durationMs: number): unknown {
  return {
    passed: baseline.ok && results.every((r) => r.passed),
    durationMs,
    baseline,
    scenarios: results.map((r) => ({ ...r, diagnostics: r.diagnostics ? r.diagnostics.slice(-6000) : undefined })),
  };
}
