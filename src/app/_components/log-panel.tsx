'use client';
// The latest coordinator log lines, newest first.
import type { LogLine } from '../../server/core/events';
import { formatClock } from './format';

const SHOWN = 60;

export function LogPanel({ logs }: { logs: LogLine[] }) {
  const shown = logs.slice(-SHOWN).reverse();
  return (
    <section className="panel log-panel">
      <header className="panel-head">
        <h2>Log</h2>
        <span className="panel-meta">latest {shown.length}</span>
      </header>
      <ol className="log-lines" data-testid="log-panel">
        {shown.length === 0 ? (
          <li className="log-empty">Nothing logged yet.</li>
        ) : (
          shown.map((line, i) => (
            <li key={`${line.at}-${logs.length - i}`} className={`log-${line.level}`}>
              <time>{formatClock(line.at)}</time>
              <span className="log-level">{line.level}</span>
              <span className="log-message">{line.message}</span>
            </li>
          ))
        )}
      </ol>
    </section>
  );
}
