'use client';
// The session timeline, newest first: starts, pauses, node joins and failures, coordinator restarts, rounds
// that were not applied. Durable on the server, so it reads the same after a coordinator restart.
import type { SessionEvent, SessionEventKind } from '../../server/core/types';
import { formatClock, formatDurationMs, formatInt } from './format';

const SHOWN = 120;

type Tone = 'good' | 'info' | 'warn' | 'bad' | 'muted';

/** An icon (plain text glyphs: no icon font is downloaded) and a color per kind. */
const KIND_LOOK: Record<SessionEventKind, { icon: string; tone: Tone; label: string }> = {
  'session-started': { icon: '▶', tone: 'info', label: 'session started' },
  'session-paused': { icon: '‖', tone: 'warn', label: 'session paused' },
  'session-resumed': { icon: '▶', tone: 'good', label: 'session resumed' },
  'session-stopped': { icon: '■', tone: 'muted', label: 'session stopped' },
  'session-completed': { icon: '✓', tone: 'good', label: 'session completed' },
  'session-failed': { icon: '✕', tone: 'bad', label: 'session failed' },
  'coordinator-restarted': { icon: '↻', tone: 'warn', label: 'coordinator restarted' },
  'node-joined': { icon: '+', tone: 'good', label: 'node joined' },
  'node-rejoined': { icon: '↺', tone: 'good', label: 'node rejoined' },
  'node-failed': { icon: '✕', tone: 'bad', label: 'node failed' },
  'node-left': { icon: '−', tone: 'muted', label: 'node left' },
  'round-not-applied': { icon: '!', tone: 'warn', label: 'round not applied' },
  'node-benched': { icon: '⏸', tone: 'warn', label: 'node benched' },
  'node-audit-failed': { icon: '✗', tone: 'warn', label: 'audit failed' },
};

const FALLBACK_LOOK = { icon: '•', tone: 'muted' as Tone, label: 'event' };

export function TimelinePanel({ events }: { events: SessionEvent[] }) {
  const shown = events.slice(-SHOWN).reverse();
  const failures = events.filter((e) => e.kind === 'node-failed' || e.kind === 'session-failed').length;
  const restarts = events.filter((e) => e.kind === 'coordinator-restarted').length;
  return (
    <section className="panel timeline-panel">
      <header className="panel-head">
        <h2>Timeline</h2>
        <span className="panel-meta">
          {events.length === 0 ? 'no events' : `${events.length} event${events.length === 1 ? '' : 's'}`}
          {failures > 0 && <span className="timeline-failures"> · {plural(failures, 'failure')}</span>}
          {restarts > 0 && <span className="timeline-restarts"> · {plural(restarts, 'restart')}</span>}
        </span>
      </header>
      <ol className="timeline" data-testid="timeline" data-events={events.length}>
        {shown.length === 0 ? (
          <li className="timeline-empty">Nothing happened yet in this session.</li>
        ) : (
          shown.map((event, i) => {
            const look = KIND_LOOK[event.kind] ?? FALLBACK_LOOK;
            const detail = describeDetail(event);
            return (
              <li
                key={`${event.at}-${event.kind}-${event.nodeId ?? ''}-${events.length - i}`}
                className={`timeline-event tone-${look.tone}`}
                data-testid="timeline-event"
                data-kind={event.kind}
                data-round={event.round}
              >
                <time dateTime={new Date(event.at).toISOString()}>{formatClock(event.at)}</time>
                <span className="timeline-round" title={`round ${event.round}`}>
                  r{formatInt(event.round)}
                </span>
                <span className="timeline-icon" title={look.label} aria-label={look.label}>
                  {look.icon}
                </span>
                <span className="timeline-message">
                  {event.message}
                  {detail && <span className="timeline-detail">{detail}</span>}
                </span>
              </li>
            );
          })
        )}
      </ol>
    </section>
  );
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The detail figures in words, for the kinds that carry known ones; other keys as key=value. */
function describeDetail(event: SessionEvent): string | null {
  const detail = event.detail;
  if (!detail) return null;
  const parts: string[] = [];
  const rest = { ...detail };
  const num = (key: string): number | null => {
    const value = rest[key];
    if (typeof value !== 'number' || !Number.isFinite(value)) return null;
    delete rest[key];
    return value;
  };
  const silent = num('silentForMs');
  // How long a failed node had been quiet; for a node that said goodbye it says nothing.
  if (silent !== null && event.kind === 'node-failed') parts.push(`silent for ${formatDurationMs(silent)}`);
  const checkpointRound = num('checkpointRound');
  if (checkpointRound !== null) parts.push(checkpointRound > 0 ? `checkpoint r${formatInt(checkpointRound)}` : 'no checkpoint');
  const replayed = num('replayed');
  if (replayed !== null) parts.push(`${formatInt(replayed)} update${replayed === 1 ? '' : 's'} replayed`);
  const version = num('modelVersion');
  if (version !== null) parts.push(`model v${formatInt(version)}`);
  for (const [key, value] of Object.entries(rest)) {
    if (value !== null && value !== '') parts.push(`${key} ${String(value)}`);
  }
  return parts.length ? parts.join(' · ') : null;
}
