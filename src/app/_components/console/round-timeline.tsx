'use client';
// Per-round arrivals, one row per round: a bar for the round's duration, the straggler cut-off and the deadline
// as ticks, and a dot per update where it arrived (green applied, amber late, red rejected), so stragglers show
// at a glance. Rows keep a fixed height: new rounds add rows at the top without moving the others' geometry.
import { useEffect, useRef, useState } from 'react';
import type { RoundTimelineEntry } from '../../../server/core/types';
import { formatDurationMs } from '../format';

type Entry = RoundTimelineEntry;

const ROW = 22;
const LEFT = 64;
const RIGHT = 70;

export function RoundTimeline({ rounds }: { rounds: Entry[] }) {
  const wrap = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(720);
  useEffect(() => {
    const el = wrap.current;
    if (!el) return;
    const measure = () => setWidth(Math.max(320, el.clientWidth));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);
  const rows = [...rounds].reverse();
  // The scale: the longest round or latest arrival (deadlines can be far longer; they are clipped, with a mark).
  const span = Math.max(100, ...rows.map((r) => Math.max(r.durationMs, r.cutoffMs ?? 0, ...r.arrivals.map((a) => a.atMs))) ) * 1.1;
  const plot = width - LEFT - RIGHT;
  const x = (ms: number) => LEFT + Math.min(1, ms / span) * plot;
  return (
    <div ref={wrap} data-testid="round-timeline">
      <div className="rt-legend">
        <span><i style={{ background: '#34d399' }} />applied</span>
        <span><i style={{ background: '#fbbf24' }} />late (after the cut-off)</span>
        <span><i style={{ background: '#f87171' }} />rejected</span>
        <span><i style={{ background: '#60a5fa', borderRadius: 0, width: 2 }} />straggler cut-off</span>
        <span><i style={{ background: '#a78bfa', borderRadius: 0, width: 2 }} />deadline</span>
      </div>
      <svg className="rt-svg" width={width} height={rows.length * ROW + 20} role="img" aria-label="Round timeline">
        <text x={LEFT} y={12}>0</text>
        <text x={LEFT + plot} y={12} textAnchor="end">{formatDurationMs(span)}</text>
        {rows.map((r, i) => {
          const y = 20 + i * ROW;
          const late = r.arrivals.filter((a) => a.late).length;
          return (
            <g key={r.round} data-testid={`timeline-round-${r.round}`} data-late={late} data-rejected={r.arrivals.filter((a) => a.status === 'rejected').length}>
              <title>{`round ${r.round}: ${formatDurationMs(r.durationMs)}, ${r.arrivals.length} update(s), ${late} late, ${r.failures} failure(s)${r.applied ? '' : ', not applied'}`}</title>
              <text x={LEFT - 8} y={y + 14} textAnchor="end">#{r.round}</text>
              <rect x={LEFT} y={y + 6} width={Math.max(1, x(r.durationMs) - LEFT)} height={10} rx={3} fill={r.applied ? '#1e3a5f' : '#3b1218'} />
              {r.cutoffMs !== null && <line x1={x(r.cutoffMs)} x2={x(r.cutoffMs)} y1={y + 2} y2={y + 20} stroke="#60a5fa" strokeWidth={2} />}
              {r.deadlineMs <= span && <line x1={x(r.deadlineMs)} x2={x(r.deadlineMs)} y1={y + 2} y2={y + 20} stroke="#a78bfa" strokeWidth={2} />}
              {r.arrivals.map((a, j) => (
                <circle key={j} cx={x(a.atMs)} cy={y + 11} r={4.5} fill={a.status === 'rejected' ? '#f87171' : a.late ? '#fbbf24' : '#34d399'}>
                  <title>{`node #${a.nodeId} at ${formatDurationMs(a.atMs)}${a.late ? ' (late)' : ''}${a.reason ? `: ${a.reason}` : ''}`}</title>
                </circle>
              ))}
              <text x={LEFT + plot + 8} y={y + 14}>{formatDurationMs(r.durationMs)}</text>
            </g>
          );
        })}
      </svg>
    </div>
  );
}
