'use client';
// One node (by id or name in the URL): throughput and round-trip latency per round, contributions accepted and
// rejected with reasons, failures; kick it or ban its name. Earnings are on their own page.
import Link from 'next/link';
import { useParams } from 'next/navigation';
import { useMemo, useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useTRPC } from '../../_trpc/client';
import { formatCompact, formatDurationMs, formatInt } from '../../_components/format';
import { LineChart } from '../../_components/line-chart';
import { PageHead } from '../../_components/console/page-head';
import { Empty, Failed, Loading } from '../../_components/console/states';

export default function NodePage() {
  const key = decodeURIComponent(useParams<{ id: string }>().id);
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const id: number | string = /^\d+$/.test(key) ? Number(key) : key;
  const activity = useQuery({ ...trpc.nodes.activity.queryOptions({ id }), refetchInterval: 3000, retry: false });
  const [banHours, setBanHours] = useState('24');
  const refresh = () => queryClient.invalidateQueries({ queryKey: trpc.nodes.activity.queryKey({ id }) });
  const kick = useMutation(trpc.nodes.kick.mutationOptions({ onSettled: refresh }));
  const rows = activity.data?.contributions ?? [];
  const throughput = useMemo(() => rows.filter((c) => c.samplesPerSecond !== null).map((c) => ({ x: c.round, y: c.samplesPerSecond! })), [rows]);
  const latency = useMemo(() => rows.filter((c) => c.latencyMs !== null).map((c) => ({ x: c.round, y: c.latencyMs! })), [rows]);

  if (activity.isPending) return <main className="console"><Loading what={`node ${key}`} /></main>;
  if (activity.isError) return <main className="console"><Failed error={activity.error} testId="node-error" /></main>;
  const { node, accepted, clipped, rejected, rejectedByReason, failures, sessionId } = activity.data;

  return (
    <main className="console" data-testid="node-page">
      <PageHead
        title={<>{node.name} <span className="muted">#{node.id}</span> <span className={`pill pill-${node.status}`} data-testid="node-status">{node.status}</span></>}
        sub={`${node.capabilities.backend} on ${node.capabilities.device} (${node.capabilities.hostname}), agent ${node.capabilities.agentVersion}${node.statusReason ? ` — ${node.statusReason}` : ''}`}
        actions={
          <>
            <Link className="btn" href={`/nodes/${node.id}/earnings`} data-testid="earnings-link">Earnings</Link>
            <button className="btn btn-danger" data-testid="kick-node" disabled={kick.isPending} onClick={() => kick.mutate({ id: node.id, reason: 'kicked from the console' })}>Kick</button>
            <label className="field" style={{ flexDirection: 'row', alignItems: 'center' }}>
              <input value={banHours} onChange={(e) => setBanHours(e.target.value)} aria-label="ban hours" style={{ width: 56 }} inputMode="numeric" /> <span>h</span>
            </label>
            <button className="btn btn-danger" data-testid="ban-node" disabled={kick.isPending} onClick={() => kick.mutate({ id: node.id, banSeconds: Math.round(Number(banHours) * 3600), reason: 'banned from the console' })}>Ban name</button>
          </>
        }
      />
      {kick.error && <div className="banner banner-error" role="alert" data-testid="kick-error">{kick.error.message}</div>}
      <dl className="kv-grid">
        <div><dt>Session</dt><dd>{sessionId === null ? '—' : <Link href={`/sessions/${sessionId}`}>#{sessionId}</Link>}</dd></div>
        <div><dt>Accepted</dt><dd data-testid="node-accepted">{formatInt(accepted)}</dd></div>
        <div title="Accepted updates longer than the limit, counted scaled down to it; their samples are credited in full"><dt>Clipped</dt><dd data-testid="node-clipped">{formatInt(clipped)}</dd></div>
        <div><dt>Rejected</dt><dd data-testid="node-rejected">{formatInt(rejected)}</dd></div>
        <div><dt>Samples/s (measured)</dt><dd>{formatCompact(node.samplesPerSecond)}</dd></div>
        <div><dt>Failures</dt><dd>{failures.length}</dd></div>
      </dl>
      <div className="console-grid">
        <LineChart testId="node-throughput" title="Samples/s per round" series={[{ key: 'sps', label: 'samples/s', color: '#fbbf24', points: throughput }]} formatY={formatCompact} yFromZero emptyText="No accepted update yet" />
        <LineChart testId="node-latency" title="Round trip (open to update)" series={[{ key: 'lat', label: 'round trip', color: '#60a5fa', points: latency }]} formatY={formatDurationMs} yFromZero emptyText="No update yet" />
      </div>
      <div className="console-grid">
        <section className="panel console-section">
          <h2>Rejections by reason</h2>
          {Object.keys(rejectedByReason).length === 0 ? <Empty>None.</Empty> : (
            <table className="console-table" data-testid="rejections"><tbody>{Object.entries(rejectedByReason).map(([reason, n]) => <tr key={reason}><td>{reason}</td><td>{n}</td></tr>)}</tbody></table>
          )}
        </section>
        <section className="panel console-section">
          <h2>Failures</h2>
          {failures.length === 0 ? <Empty>None.</Empty> : (
            <table className="console-table"><tbody>{failures.map((f, i) => <tr key={i}><td>{new Date(f.at).toLocaleTimeString('en-US')}</td><td>round {f.round}</td><td style={{ whiteSpace: 'normal' }}>{f.message}</td></tr>)}</tbody></table>
          )}
        </section>
      </div>
      <section className="panel console-section">
        <h2>Contributions (latest first)</h2>
        {rows.length === 0 ? <Empty>No contribution in this session.</Empty> : (
          <div className="table-scroll" style={{ maxHeight: 360, overflowY: 'auto' }}>
            <table className="console-table" data-testid="contributions">
              <thead><tr><th>Round</th><th>Status</th><th>Samples</th><th>Round trip</th><th>Reason</th></tr></thead>
              <tbody>
                {[...rows].reverse().slice(0, 300).map((c, i) => (
                  <tr key={i}><td>{c.round}</td><td>{c.status}{c.count > 1 ? ` ×${c.count}` : ''}</td><td>{c.samples}</td><td>{formatDurationMs(c.latencyMs)}</td><td>{c.reason ?? (c.scale !== null ? `counted scaled by ${c.scale.toPrecision(2)} (norm clipping); samples credited in full` : '')}</td></tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </main>
  );
}
