'use client';
// A small responsive line chart drawn as plain SVG: x is the round, one path per series, axes with tick
// labels, a hover tooltip and the last value of each series in the legend. Measures its own width with a
// ResizeObserver so text keeps its size at any width (no viewBox scaling).
import { useCallback, useEffect, useMemo, useRef, useState, type PointerEvent } from 'react';
import { formatInt, niceTicks, roundTicks } from './format';

export interface ChartPoint {
  x: number;
  y: number;
}

export interface ChartSeries {
  key: string;
  label: string;
  color: string;
  points: ChartPoint[];
  /** Dashed line (e.g. a derived or secondary figure). */
  dashed?: boolean;
}

/** A vertical dashed line at one round (e.g. where the coordinator restarted). */
export interface ChartMarker {
  x: number;
  label: string;
  /** Hover text. */
  title?: string;
  testId?: string;
}

export interface LineChartProps {
  testId: string;
  title: string;
  series: ChartSeries[];
  formatY: (value: number) => string;
  /** Axis tick labels; defaults to formatY. */
  formatTick?: (value: number) => string;
  /** Clamp the y domain (e.g. [0, 1] for accuracy). */
  yClamp?: [number, number];
  /** Always include zero in the y domain. */
  yFromZero?: boolean;
  height?: number;
  emptyText: string;
  /** Vertical markers; they widen the round axis to include themselves once the chart has data. */
  markers?: ChartMarker[];
}

const MARGIN = { top: 12, right: 16, bottom: 26, left: 52 };
/** Past this many points per series the path is thinned to about two points per pixel column. */
const MAX_DRAWN_PER_PX = 2;
const DOTS_BELOW = 48;
/** A marker label is left out when it would crowd the previous one (px). */
const MARKER_LABEL_GAP = 52;
const NO_MARKERS: ChartMarker[] = [];

export function LineChart({
  testId,
  title,
  series,
  formatY,
  formatTick = formatY,
  yClamp,
  yFromZero,
  height = 210,
  emptyText,
  markers = NO_MARKERS,
}: LineChartProps) {
  const wrapRef = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(560);
  const [hoverX, setHoverX] = useState<number | null>(null);

  useEffect(() => {
    const el = wrapRef.current;
    if (!el) return;
    const measure = () => setWidth(Math.max(200, Math.floor(el.clientWidth)));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const plotW = Math.max(10, width - MARGIN.left - MARGIN.right);
  const plotH = Math.max(10, height - MARGIN.top - MARGIN.bottom);
  const totalPoints = Math.max(0, ...series.map((s) => s.points.length));

  const geometry = useMemo(() => {
    const all = series.flatMap((s) => s.points);
    if (all.length === 0) return null;
    let xMin = Infinity;
    let xMax = -Infinity;
    let yMin = Infinity;
    let yMax = -Infinity;
    for (const p of all) {
      if (p.x < xMin) xMin = p.x;
      if (p.x > xMax) xMax = p.x;
      if (p.y < yMin) yMin = p.y;
      if (p.y > yMax) yMax = p.y;
    }
    if (yFromZero) yMin = Math.min(0, yMin);
    // A little headroom so a flat line does not sit on the frame.
    const pad = (yMax - yMin) * 0.06;
    yMin -= yFromZero && yMin === 0 ? 0 : pad;
    yMax += pad;
    if (yClamp) {
      yMin = Math.max(yClamp[0], yMin);
      yMax = Math.min(yClamp[1], yMax);
    }
    const y = niceTicks(yMin, yMax, 4);
    if (yClamp) {
      y.min = Math.max(yClamp[0], y.min);
      y.max = Math.min(yClamp[1], y.max);
      y.ticks = y.ticks.filter((t) => t >= y.min - 1e-9 && t <= y.max + 1e-9);
    }
    for (const m of markers) {
      if (!Number.isFinite(m.x)) continue;
      if (m.x < xMin) xMin = m.x;
      if (m.x > xMax) xMax = m.x;
    }
    if (xMax === xMin) {
      xMin -= 1;
      xMax += 1;
    }
    return { xMin, xMax, yMin: y.min, yMax: y.max, yTicks: y.ticks, xTicks: roundTicks(Math.ceil(xMin), Math.floor(xMax), Math.max(2, Math.floor(plotW / 70))) };
  }, [series, markers, yClamp, yFromZero, plotW]);

  const sx = useCallback(
    (x: number) => (geometry ? MARGIN.left + ((x - geometry.xMin) / (geometry.xMax - geometry.xMin)) * plotW : 0),
    [geometry, plotW],
  );
  const sy = useCallback(
    (y: number) => (geometry ? MARGIN.top + (1 - (y - geometry.yMin) / (geometry.yMax - geometry.yMin || 1)) * plotH : 0),
    [geometry, plotH],
  );

  const paths = useMemo(
    () =>
      series.map((s) => {
        const drawn = thin(s.points, Math.ceil(plotW * MAX_DRAWN_PER_PX));
        let d = '';
        for (let i = 0; i < drawn.length; i++) d += `${i === 0 ? 'M' : 'L'}${sx(drawn[i].x).toFixed(1)},${sy(drawn[i].y).toFixed(1)}`;
        return { series: s, d, drawn };
      }),
    [series, plotW, sx, sy],
  );

  const drawnMarkers = useMemo(() => {
    if (!geometry) return [];
    let lastLabelled = -Infinity;
    return markers
      .filter((m) => Number.isFinite(m.x))
      .slice()
      .sort((a, b) => a.x - b.x)
      .map((m) => {
        const px = sx(m.x);
        const showLabel = px - lastLabelled >= MARKER_LABEL_GAP;
        if (showLabel) lastLabelled = px;
        return { marker: m, px, showLabel };
      });
  }, [geometry, markers, sx]);

  const onPointerMove = (event: PointerEvent<SVGSVGElement>) => {
    if (!geometry) return;
    const rect = event.currentTarget.getBoundingClientRect();
    const px = event.clientX - rect.left;
    const x = geometry.xMin + ((px - MARGIN.left) / plotW) * (geometry.xMax - geometry.xMin);
    setHoverX(x);
  };

  // The nearest point of each series to the pointer's round.
  const hover = useMemo(() => {
    if (hoverX === null || !geometry) return null;
    const rows = series
      .map((s) => ({ s, p: nearest(s.points, hoverX) }))
      .filter((r): r is { s: ChartSeries; p: ChartPoint } => r.p !== null);
    if (rows.length === 0) return null;
    const anchor = rows.reduce((best, r) => (Math.abs(r.p.x - hoverX) < Math.abs(best.p.x - hoverX) ? r : best));
    return { x: anchor.p.x, rows: rows.filter((r) => r.p.x === anchor.p.x) };
  }, [hoverX, series, geometry]);

  return (
    <section className="panel chart-panel">
      <header className="panel-head">
        <h2>
          {title} <span className="panel-unit">by round</span>
        </h2>
        <ul className="legend">
          {series.map((s) => {
            const last = s.points[s.points.length - 1];
            return (
              <li key={s.key}>
                <span className={`swatch${s.dashed ? ' dashed' : ''}`} style={{ background: s.color }} />
                <span className="legend-label">{s.label}</span>
                <span className="legend-value" data-testid={`${testId}-last-${s.key}`}>
                  {last ? formatY(last.y) : '—'}
                </span>
              </li>
            );
          })}
        </ul>
      </header>
      <div className="chart-wrap" ref={wrapRef}>
        <svg
          data-testid={testId}
          data-points={totalPoints}
          width={width}
          height={height}
          role="img"
          aria-label={`${title} chart, ${totalPoints} points`}
          onPointerMove={onPointerMove}
          onPointerLeave={() => setHoverX(null)}
        >
          {geometry ? (
            <>
              <g className="grid">
                {geometry.yTicks.map((t) => (
                  <g key={`y${t}`}>
                    <line x1={MARGIN.left} x2={MARGIN.left + plotW} y1={sy(t)} y2={sy(t)} />
                    <text className="tick" x={MARGIN.left - 8} y={sy(t)} dy="0.32em" textAnchor="end">
                      {formatTick(t)}
                    </text>
                  </g>
                ))}
                {geometry.xTicks.map((t) => (
                  <g key={`x${t}`}>
                    <line className="xtick" x1={sx(t)} x2={sx(t)} y1={MARGIN.top + plotH} y2={MARGIN.top + plotH + 4} />
                    <text className="tick" x={sx(t)} y={MARGIN.top + plotH + 17} textAnchor="middle">
                      {formatInt(t)}
                    </text>
                  </g>
                ))}
                <line className="axis" x1={MARGIN.left} x2={MARGIN.left + plotW} y1={MARGIN.top + plotH} y2={MARGIN.top + plotH} />
              </g>
              {drawnMarkers.map(({ marker, px, showLabel }, i) => (
                <g key={`m${marker.x}-${i}`} className="marker" data-testid={marker.testId} data-round={marker.x}>
                  {marker.title && <title>{marker.title}</title>}
                  <line x1={px} x2={px} y1={MARGIN.top} y2={MARGIN.top + plotH} />
                  {/* A wider, invisible target so the hover text is easy to reach. */}
                  <line className="marker-hit" x1={px} x2={px} y1={MARGIN.top} y2={MARGIN.top + plotH} />
                  {showLabel && (
                    <text
                      className="marker-label"
                      // Near the right edge the label goes on the left of its line.
                      x={px > MARGIN.left + plotW - 48 ? px - 4 : px + 4}
                      y={MARGIN.top + 9}
                      textAnchor={px > MARGIN.left + plotW - 48 ? 'end' : 'start'}
                    >
                      {marker.label}
                    </text>
                  )}
                </g>
              ))}
              {paths.map(({ series: s, d, drawn }) => (
                <g key={s.key}>
                  <path
                    className="series"
                    d={d}
                    stroke={s.color}
                    strokeDasharray={s.dashed ? '5 4' : undefined}
                    data-series={s.key}
                    data-points={s.points.length}
                  />
                  {s.points.length <= DOTS_BELOW &&
                    drawn.map((p) => <circle key={p.x} cx={sx(p.x)} cy={sy(p.y)} r={2.5} fill={s.color} />)}
                </g>
              ))}
              {hover && (
                <g className="hover">
                  <line x1={sx(hover.x)} x2={sx(hover.x)} y1={MARGIN.top} y2={MARGIN.top + plotH} />
                  {hover.rows.map((r) => (
                    <circle key={r.s.key} cx={sx(r.p.x)} cy={sy(r.p.y)} r={4} stroke={r.s.color} />
                  ))}
                </g>
              )}
            </>
          ) : (
            <text className="empty" x={width / 2} y={height / 2} textAnchor="middle">
              {emptyText}
            </text>
          )}
        </svg>
        {hover && (
          <div
            className="tooltip"
            style={{
              left: Math.min(sx(hover.x) + 12, width - 150),
              top: MARGIN.top + 4,
            }}
          >
            <div className="tooltip-title">round {hover.x}</div>
            {hover.rows.map((r) => (
              <div key={r.s.key} className="tooltip-row">
                <span className="swatch" style={{ background: r.s.color }} />
                {r.s.label}
                <b>{formatY(r.p.y)}</b>
              </div>
            ))}
          </div>
        )}
      </div>
    </section>
  );
}

/** Points sorted by x; nearest by x (binary search). */
function nearest(points: ChartPoint[], x: number): ChartPoint | null {
  if (points.length === 0) return null;
  let lo = 0;
  let hi = points.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid].x < x) lo = mid + 1;
    else hi = mid;
  }
  const after = points[lo];
  const before = points[Math.max(0, lo - 1)];
  return Math.abs(before.x - x) <= Math.abs(after.x - x) ? before : after;
}

/** Keep the min and max of each bucket, in x order, so spikes survive thinning. */
function thin(points: ChartPoint[], limit: number): ChartPoint[] {
  if (points.length <= limit) return points;
  const buckets = Math.max(1, Math.floor(limit / 2));
  const size = points.length / buckets;
  const out: ChartPoint[] = [];
  for (let b = 0; b < buckets; b++) {
    const start = Math.floor(b * size);
    const end = Math.min(points.length, Math.floor((b + 1) * size));
    if (end <= start) continue;
    let lo = points[start];
    let hi = points[start];
    for (let i = start + 1; i < end; i++) {
      if (points[i].y < lo.y) lo = points[i];
      if (points[i].y > hi.y) hi = points[i];
    }
    if (lo === hi) out.push(lo);
    else if (lo.x < hi.x) out.push(lo, hi);
    else out.push(hi, lo);
  }
  const last = points[points.length - 1];
  if (out[out.length - 1] !== last) out.push(last);
  return out;
}
