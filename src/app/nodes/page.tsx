'use client';
// Every node the coordinator knows, filtered by status and backend; kick one from here.
import Link from 'next/link';
import { useMemo, useState } from 'react';
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useTRPC } from '../_trpc/client';
import { formatAgo, formatCompact, formatInt } from '../_components/format';
import { PageHead } from '../_components/console/page-head';
import { Empty, Failed, Loading } from '../_components/console/states';

const STATUSES = ['connecting', 'idle', 'training', 'failed', 'left'];

export default function NodesPage() {
  const trpc = useTRPC();
  const queryClient = useQueryClient();
  const nodes = useQuery({ ...trpc.nodes.list.queryOptions(), refetchInterval: 2000 });
  const [status, setStatus] = useState('');
  const [backend, setBackend] = useState('');
  const kick = useMutation(trpc.nodes.kick.mutationOptions({ onSettled: () => queryClient.invalidateQueries({ queryKey: trpc.nodes.list.queryKey() }) }));
  const backends = useMemo(() => [...new Set((nodes.data ?? []).map((n) => n.capabilities.backend))].sort(), [nodes.data]);
  const shown = (nodes.data ?? []).filter((n) => (!status || n.status === status) && (!backend || n.capabilities.backend === backend));
  const now = Date.now();

  return (
    <main className="console" data-testid="nodes-page">
      <PageHead
        title="Nodes"
        sub="Machines lent to this coordinator, live."
        actions={
          <div className="filters">
            <label className="field">
              <span>Status</span>
              <select value={status} onChange={(e) => setStatus(e.target.value)} data-testid="filter-status">
                <option value="">any</option>
                {STATUSES.map((s) => <option key={s} value={s}>{s}</option>)}
              </select>
            </label>
            <label className="field">
              <span>Backend</span>
              <select value={backend} onChange={(e) => setBackend(e.target.value)} data-testid="filter-backend">
                <option value="">any</option>
                {backends.map((b) => <option key={b} value={b}>{b}</option>)}
              </select>
            </label>
          </div>
        }
      />
      {kick.error && <div className="banner banner-error" role="alert" data-testid="kick-error">{kick.error.message}</div>}
      <section className="panel console-section">
        {nodes.isPending ? (
          <Loading what="nodes" />
        ) : nodes.isError ? (
          <Failed error={nodes.error} />
        ) : shown.length === 0 ? (
          <Empty testId="nodes-empty">{nodes.data.length === 0 ? 'No node has connected yet: start an agent (npm run agent).' : 'No node matches these filters.'}</Empty>
        ) : (
          <div className="table-scroll">
            <table className="console-table" data-testid="nodes-table">
              <thead>
                <tr><th>Node</th><th>Status</th><th>Backend</th><th>Device</th><th>Samples/s</th><th>Accepted</th><th>Rejected</th><th>Heartbeat</th><th /></tr>
              </thead>
              <tbody>
                {shown.map((n) => (
                  <tr key={n.id} data-testid={`node-row-${n.name}`} data-status={n.status}>
                    <td><Link href={`/nodes/${n.id}`}>{n.name}</Link> <span className="muted">#{n.id}</span></td>
                    <td><span className={`pill pill-${n.status}`}>{n.status}</span> {n.statusReason && <span className="muted" title={n.statusReason}>{n.statusReason.slice(0, 40)}</span>}</td>
                    <td>{n.capabilities.backend}</td>
                    <td title={n.capabilities.device}>{n.capabilities.device.slice(0, 28)}</td>
                    <td>{formatCompact(n.samplesPerSecond)}</td>
                    <td>{formatInt(n.acceptedContributions)}</td>
                    <td>{formatInt(n.rejectedContributions)}</td>
                    <td>{formatAgo(now - n.lastHeartbeatAt)}</td>
                    <td>
                      <button className="btn btn-danger" disabled={n.status === 'left' || kick.isPending} data-testid={`kick-${n.name}`} onClick={() => kick.mutate({ id: n.id, reason: 'kicked from the console' })}>
                        Kick
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </main>
  );
}
