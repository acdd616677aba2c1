'use client';
// One session: its settings and outcome, loss and accuracy curves, the per-round timeline, the nodes that
// worked in it, its checkpoints (download the model, start a new session from any of them) and its events.
import Link from 'next/link';
import { useParams } from 'next/navigation';
import { useEffect, useMemo } from 'react';
import { useQuery } from '@tanstack/react-query';
import { useTRPC } from '../../_trpc/client';
import { formatCompact, formatDurationMs, formatInt, formatPercent, formatReal } from '../../_components/format';
import { LineChart } from '../../_components/line-chart';
import { PageHead } from '../../_components/console/page-head';
import { RoundTimeline } from '../../_components/console/round-timeline';
import { Empty, Failed, Loading, StateBadge } from '../../_components/console/states';

export default function SessionPage() {
  const raw = useParams<{ id: string }>().id;
  const id = Number(raw);
  const trpc = useTRPC();
  const valid = Number.isInteger(id) && id > 0;
  const session = useQuery({ ...trpc.training.session.queryOptions({ id }), enabled: valid, refetchInterval: 2000 });
  const live = session.data?.state === 'running' || session.data?.state === 'paused';
  const every = live ? 2000 : false;
  const metrics = useQuery({ ...trpc.training.metrics.queryOptions({ sessionId: id, limit: 20_000 }), enabled: valid, refetchInterval: every });
  const timeline = useQuery({ ...trpc.training.roundTimeline.queryOptions({ sessionId: id, rounds: 40 }), enabled: valid, refetchInterval: every });
  const checkpoints = useQuery({ ...trpc.training.checkpoints.queryOptions({ sessionId: id }), enabled: valid, refetchInterval: every });
  const events = useQuery({ ...trpc.training.events.queryOptions({ sessionId: id }), enabled: valid, refetchInterval: every });
  // A session that just ended stops the polling: one last read of everything, so the page shows its end.
  const endedState = live ? null : (session.data?.state ?? null);
  useEffect(() => {
    if (endedState === null) return;
    void metrics.refetch();
    void timeline.refetch();
    void checkpoints.refetch();
    void events.refetch();
  }, [endedState, session.data?.round]); // only the end of the session (and its last round) should trigger this

  const history = metrics.data?.history ?? [];
  const accuracy = useMemo(() => history.filter((m) => m.testAccuracy !== null).map((m) => ({ x: m.round, y: m.testAccuracy! })), [history]);
  const loss = useMemo(() => history.map((m) => ({ x: m.round, y: m.trainLoss })).filter((p) => Number.isFinite(p.y)), [history]);
  const best = accuracy.length ? Math.max(...accuracy.map((p) => p.y)) : null;
  const nodes = useMemo(() => {
    const byNode = new Map<number, { updates: number; late: number; rejected: number }>();
    for (const r of timeline.data ?? []) for (const a of r.arrivals) {
      const n = byNode.get(a.nodeId) ?? { updates: 0, late: 0, rejected: 0 };
      n.updates += 1;
      if (a.late) n.late += 1;
      if (a.status === 'rejected') n.rejected += 1;
      byNode.set(a.nodeId, n);
    }
    return [...byNode].sort((a, b) => a[0] - b[0]);
  }, [timeline.data]);

  if (!valid) return <main className="console"><Failed error={`no session ${raw}`} /></main>;
  if (session.isPending) return <main className="console"><Loading what={`session ${id}`} /></main>;
  if (session.isError) return <main className="console"><Failed error={session.error} testId="session-error" /></main>;
  const s = session.data;
  const c = s.config;
  const stopsAt = c.targetAccuracy !== null ? `accuracy ${formatPercent(c.targetAccuracy, 1)}` : c.maxSamples !== null ? `${formatCompact(c.maxSamples)} samples` : c.maxRounds !== null ? `${formatInt(c.maxRounds)} rounds` : 'stopped by hand';
  const hasCheckpoint = (checkpoints.data?.length ?? 0) > 0;

  return (
    <main className="console" data-testid="session-page" data-session={id}>
      <PageHead
        title={<>Session #{id} <StateBadge state={s.state} /></>}
        sub={`${c.model.toUpperCase()} on ${c.dataset}, ${c.optimizer.name} lr ${c.optimizer.learningRate}, batch ${c.batchSize}, ${c.aggregation?.rule ?? 'mean'}, until ${stopsAt}${c.initFrom ? `, from session #${c.initFrom.sessionId} round ${c.initFrom.round}` : ''}`}
        actions={
          <>
            <a className="btn" href={hasCheckpoint ? `/api/sessions/${id}/model/model.json` : undefined} download={`session-${id}-model.json`} aria-disabled={!hasCheckpoint} data-testid="download-model-json">
              model.json
            </a>
            <a className="btn" href={hasCheckpoint ? `/api/sessions/${id}/model/weights.bin` : undefined} download="weights.bin" aria-disabled={!hasCheckpoint} data-testid="download-weights">
              weights.bin
            </a>
            <Link className="btn" href={`/sessions/compare?a=${id}`}>Compare…</Link>
          </>
        }
      />
      {s.message && <div className="banner banner-info" data-testid="session-message">{s.message}</div>}
      <dl className="kv-grid">
        <div><dt>Rounds</dt><dd data-testid="session-round">{formatInt(s.round)}</dd></div>
        <div><dt>Samples</dt><dd>{formatCompact(s.totalSamples)}</dd></div>
        <div><dt>Duration</dt><dd>{formatDurationMs((s.endedAt ?? Date.now()) - s.startedAt)}</dd></div>
        <div><dt>Last accuracy</dt><dd>{formatPercent(s.lastTestAccuracy)}</dd></div>
        <div><dt>Best accuracy</dt><dd data-testid="best-accuracy">{formatPercent(best)}</dd></div>
        <div><dt>Throughput</dt><dd>{formatCompact(s.samplesPerSecond)}/s</dd></div>
      </dl>
      <div className="console-grid">
        <LineChart testId="session-accuracy" title="Test accuracy" series={[{ key: 'acc', label: 'accuracy', color: '#34d399', points: accuracy }]} formatY={(v) => formatPercent(v, 1)} yClamp={[0, 1]} emptyText="No evaluation yet" />
        <LineChart testId="session-loss" title="Training loss" series={[{ key: 'loss', label: 'train loss', color: '#60a5fa', points: loss }]} formatY={formatReal} yFromZero emptyText="No round yet" />
      </div>
      <section className="panel console-section">
        <h2>Rounds (last 40)</h2>
        {timeline.isPending ? <Loading what="rounds" /> : timeline.isError ? <Failed error={timeline.error} /> : timeline.data.length === 0 ? <Empty>No round committed yet.</Empty> : <RoundTimeline rounds={timeline.data} />}
      </section>
      <div className="console-grid">
        <section className="panel console-section">
          <h2>Nodes (last 40 rounds)</h2>
          {nodes.length === 0 ? (
            <Empty>No updates yet.</Empty>
          ) : (
            <table className="console-table" data-testid="session-nodes">
              <thead><tr><th>Node</th><th>Updates</th><th>Late</th><th>Rejected</th></tr></thead>
              <tbody>
                {nodes.map(([nodeId, n]) => (
                  <tr key={nodeId}><td><Link href={`/nodes/${nodeId}`}>#{nodeId}</Link></td><td>{n.updates}</td><td>{n.late}</td><td>{n.rejected}</td></tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section className="panel console-section">
          <h2>Checkpoints</h2>
          {checkpoints.isPending ? (
            <Loading what="checkpoints" />
          ) : checkpoints.isError ? (
            <Failed error={checkpoints.error} />
          ) : checkpoints.data.length === 0 ? (
            <Empty testId="checkpoints-empty">No checkpoint yet (one every {c.checkpointEvery} rounds, and at the end).</Empty>
          ) : (
            <table className="console-table" data-testid="checkpoints-table">
              <thead><tr><th>Round</th><th>Version</th><th>Size</th><th>Written</th><th>Model</th><th /></tr></thead>
              <tbody>
                {[...checkpoints.data].reverse().map((k) => (
                  <tr key={k.round} data-testid={`checkpoint-${k.round}`}>
                    <td>{k.round}</td>
                    <td>{k.modelVersion}</td>
                    <td>{(k.bytes / 2 ** 20).toFixed(2)} MiB</td>
                    <td>{new Date(k.createdAt).toLocaleTimeString('en-US')}</td>
                    <td>
                      <a href={`/api/sessions/${id}/checkpoints/${k.round}/model.json`} download={`session-${id}-round-${k.round}-model.json`}>model.json</a>{' '}
                      <a href={`/api/sessions/${id}/checkpoints/${k.round}/weights.bin`} download="weights.bin">weights.bin</a>
                    </td>
                    <td><Link className="btn" href={`/sessions/new?fromSession=${id}&round=${k.round}`} data-testid={`start-from-${k.round}`}>Start from here</Link></td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
      </div>
      <section className="panel console-section">
        <h2>Events</h2>
        {events.isPending ? <Loading what="events" /> : events.isError ? <Failed error={events.error} /> : events.data.length === 0 ? <Empty>No events.</Empty> : (
          <table className="console-table" data-testid="session-events">
            <tbody>
              {[...events.data].reverse().slice(0, 200).map((e, i) => (
                <tr key={i}><td>{new Date(e.at).toLocaleTimeString('en-US')}</td><td>round {e.round}</td><td>{e.kind}</td><td style={{ whiteSpace: 'normal' }}>{e.message}</td></tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </main>
  );
}
