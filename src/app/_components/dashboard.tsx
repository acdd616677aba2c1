'use client';
// The dashboard page: session header and controls, stat tiles, live charts, nodes, session timeline and log. Everything shown
// comes from the live.dashboard subscription (see use-live-dashboard.ts).
import { useMemo } from 'react';
import type { MetricPoint, SessionEvent } from '../../server/core/types';
import { Controls } from './controls';
import { formatAgo, formatCompact, formatDurationMs, formatInt, formatPercent, formatReal } from './format';
import { LineChart, type ChartMarker, type ChartSeries } from './line-chart';
import { latestFigures, restartRounds, type LiveState } from './live-state';
import { LogPanel } from './log-panel';
import { NodeTable } from './node-table';
import { TimelinePanel } from './timeline-panel';
import { useLiveDashboard, useNow, type ConnectionState } from './use-live-dashboard';
import { SIGN_IN_PATH, useOperator, type OperatorState } from './use-operator';

const COLORS = {
  train: '#60a5fa',
  test: '#f472b6',
  accuracy: '#34d399',
  throughput: '#fbbf24',
};

const CONNECTION_TEXT: Record<ConnectionState, string> = {
  connecting: 'connecting…',
  connected: 'connected',
  reconnecting: 'reconnecting…',
  error: 'connection error — retrying',
};

export function Dashboard() {
  const { state, connection, connectionError } = useLiveDashboard();
  const { operator, signOut } = useOperator();
  const status = state.status;
  const session = status?.session ?? null;
  const hasSession = status !== null && status.sessionId !== null;

  return (
    <div className={`page${connection === 'connected' ? '' : ' stale'}`}>
      <header className="topbar">
        <div className="brand">
          <span className="brand-mark" aria-hidden>
            ▦
          </span>
          HyperGPU
          <span className="brand-sub">coordinator</span>
        </div>
        <div className="topbar-right">
          <a className="link" href="/rewards" data-testid="rewards-link">
            Rewards
          </a>
          <OperatorBadge operator={operator} signOut={signOut} />
          <div className="connection" data-testid="connection-state" data-state={connection} title={connectionError ?? undefined}>
            <span className="dot" />
            {CONNECTION_TEXT[connection]}
          </div>
        </div>
      </header>

      <section className="panel session-bar">
        <div className="session-info">
          <span className={`state-badge state-${status?.state ?? 'unknown'}`} data-testid="state-badge" data-state={status?.state ?? 'unknown'}>
            {status?.state ?? 'unknown'}
          </span>
          <SessionLine state={state} />
        </div>
        <Controls
          state={status?.state ?? null}
          connected={connection === 'connected'}
          operator={operator}
          lastModel={session?.config.model ?? null}
          lastOptimizer={session?.config.optimizer.name ?? null}
        />
      </section>

      {session?.message && (
        <div className={`banner ${status?.state === 'failed' ? 'banner-error' : 'banner-info'}`} data-testid="session-message">
          {session.message}
        </div>
      )}

      {!state.ready ? (
        <section className="panel empty-state" data-testid="loading-state">
          <h2>Connecting to the coordinator…</h2>
          <p>The dashboard follows the coordinator live over a WebSocket at <code>/trpc-ws</code>.</p>
        </section>
      ) : !hasSession ? (
        <section className="panel empty-state" data-testid="empty-state">
          <h2>No session yet — press Start or run <code>npm start</code></h2>
          <p>Connected nodes are listed below; a session hands them work as soon as it starts.</p>
        </section>
      ) : (
        <>
          <StatTiles state={state} />
          <Charts metrics={state.metrics} timeline={state.timeline} />
        </>
      )}

      <NodeTable nodes={state.nodes} clockOffsetMs={state.clockOffsetMs} />
      <div className="bottom-grid">
        <TimelinePanel events={state.timeline} />
        <LogPanel logs={state.logs} />
      </div>
    </div>
  );
}

/** Signed in as the operator (with a sign-out) or not (with the way in). */
function OperatorBadge({ operator, signOut }: { operator: OperatorState; signOut: () => Promise<void> }) {
  if (operator === 'unknown') return null;
  return (
    <span className="operator" data-testid="operator-state" data-state={operator}>
      {operator === 'signed-in' ? (
        <>
          signed in as operator
          <button type="button" className="link" onClick={() => void signOut()} data-testid="sign-out">
            Sign out
          </button>
        </>
      ) : (
        <>
          read only
          <a className="link" href={SIGN_IN_PATH} data-testid="sign-in-link">
            Sign in
          </a>
        </>
      )}
    </span>
  );
}

function SessionLine({ state }: { state: LiveState }) {
  const now = useNow(1000) + state.clockOffsetMs;
  const status = state.status;
  const session = status?.session ?? null;
  if (!status) return <span className="session-line muted">waiting for the coordinator</span>;
  if (!session) return <span className="session-line muted">no session</span>;
  const { config } = session;
  const opt = config.optimizer;
  const running = session.endedAt === null;
  return (
    <span className="session-line">
      <span className="kv">
        <span className="k">session</span>
        <b data-testid="session-id">#{session.id}</b>
      </span>
      <span className="kv">
        <span className="k">model</span>
        <b data-testid="session-model">{config.model.toUpperCase()}</b>
      </span>
      <span className="kv">
        <span className="k">optimizer</span>
        <b data-testid="session-optimizer">
          {opt.name === 'adam' ? 'Adam' : 'SGD'} <span className="muted">lr {opt.learningRate}</span>
        </b>
      </span>
      <span className="kv">
        <span className="k">data</span>
        <b>{config.dataset}</b>
      </span>
      <span className="kv">
        <span className="k">{running ? 'started' : 'ended'}</span>
        <b>{formatAgo(now - (running ? session.startedAt : (session.endedAt ?? now)))}</b>
      </span>
    </span>
  );
}

function StatTiles({ state }: { state: LiveState }) {
  const f = latestFigures(state);
  const session = state.status?.session ?? null;
  const target = session?.config.maxRounds ?? null;
  return (
    <section className="tiles">
      <Tile label="Round" testId="round-counter" value={formatInt(f.round)} raw={f.round} hint={target ? `of ${formatInt(target)}` : `epoch ${session?.epoch ?? 0}`} />
      <Tile label="Model version" testId="model-version" value={formatInt(f.modelVersion)} raw={f.modelVersion} />
      <Tile
        label="Test accuracy"
        testId="accuracy-value"
        value={formatPercent(f.testAccuracy)}
        raw={f.testAccuracy}
        hint={f.evaluatedRounds ? `${f.evaluatedRounds} evaluations` : 'not evaluated yet'}
        accent="good"
      />
      <Tile label="Train loss" testId="train-loss" value={formatReal(f.trainLoss)} raw={f.trainLoss} hint={f.testLoss !== null ? `test ${formatReal(f.testLoss)}` : undefined} />
      <Tile label="Samples/s" testId="samples-per-second" value={formatCompact(f.samplesPerSecond === null ? null : Math.round(f.samplesPerSecond))} raw={f.samplesPerSecond} />
      <Tile label="Round time" testId="round-duration" value={formatDurationMs(f.roundDurationMs)} raw={f.roundDurationMs} />
      <Tile label="Total samples" testId="total-samples" value={formatCompact(f.totalSamples)} raw={f.totalSamples} />
      <Tile label="Nodes" testId="nodes-count" value={`${f.nodesActive} / ${f.nodesTotal}`} raw={f.nodesActive} hint="active / total" />
    </section>
  );
}

function Tile({ label, value, raw, hint, testId, accent }: {
  label: string;
  value: string;
  raw: number | null;
  hint?: string;
  testId: string;
  accent?: 'good';
}) {
  return (
    <div className={`tile${accent ? ` tile-${accent}` : ''}`}>
      <div className="tile-label">{label}</div>
      <div className="tile-value" data-testid={testId} data-value={raw ?? ''}>
        {value}
      </div>
      <div className="tile-hint">{hint ?? '\u00a0'}</div>
    </div>
  );
}

function Charts({ metrics, timeline }: { metrics: MetricPoint[]; timeline: SessionEvent[] }) {
  // One marker per round at which the coordinator restarted (and resumed this session).
  const restartKey = restartRounds(timeline).join(',');
  const markers = useMemo<ChartMarker[]>(
    () =>
      restartKey === ''
        ? []
        : restartKey.split(',').map((r) => ({
            x: Number(r),
            label: 'restart',
            title: `coordinator restarted at round ${r}`,
            testId: 'restart-marker',
          })),
    [restartKey],
  );

  const { loss, accuracy, throughput } = useMemo(() => {
    const train: ChartSeries['points'] = [];
    const test: ChartSeries['points'] = [];
    const acc: ChartSeries['points'] = [];
    const sps: ChartSeries['points'] = [];
    for (const m of metrics) {
      if (Number.isFinite(m.trainLoss)) train.push({ x: m.round, y: m.trainLoss });
      if (m.testLoss !== null && Number.isFinite(m.testLoss)) test.push({ x: m.round, y: m.testLoss });
      if (m.testAccuracy !== null && Number.isFinite(m.testAccuracy)) acc.push({ x: m.round, y: m.testAccuracy });
      if (Number.isFinite(m.samplesPerSecond)) sps.push({ x: m.round, y: m.samplesPerSecond });
    }
    return {
      loss: [
        { key: 'train', label: 'train', color: COLORS.train, points: train },
        { key: 'test', label: 'test', color: COLORS.test, points: test },
      ] satisfies ChartSeries[],
      accuracy: [{ key: 'accuracy', label: 'test accuracy', color: COLORS.accuracy, points: acc }] satisfies ChartSeries[],
      throughput: [{ key: 'sps', label: 'samples/s', color: COLORS.throughput, points: sps }] satisfies ChartSeries[],
    };
  }, [metrics]);

  return (
    <section className="charts">
      <LineChart
        testId="loss-chart"
        title="Loss"
        series={loss}
        formatY={formatReal}
        yFromZero
        markers={markers}
        emptyText="Waiting for the first round…"
      />
      <LineChart
        testId="accuracy-chart"
        title="Test accuracy"
        series={accuracy}
        formatY={(v) => formatPercent(v)}
        formatTick={(v) => `${Math.round(v * 1000) / 10}%`}
        yClamp={[0, 1]}
        markers={markers}
        emptyText="Waiting for the first evaluation…"
      />
      <LineChart
        testId="throughput-chart"
        title="Throughput"
        series={throughput}
        formatY={(v) => formatCompact(Math.round(v))}
        yFromZero
        emptyText="Waiting for the first round…"
      />
    </section>
  );
}
