'use client';
// At /status, not /health: GET /health is the JSON report itself (load balancers and scripts read it).
// Each component's state (database, aggregator workers, evaluator, agent channel, and what else registered),
// the version and the uptime, from GET /health (a 503 still carries the report).
import { useQuery } from '@tanstack/react-query';
import { formatDurationMs } from '../_components/format';
import { PageHead } from '../_components/console/page-head';
import { Failed, Loading } from '../_components/console/states';

interface HealthBody {
  status: 'ok' | 'degraded' | 'down';
  version: string;
  uptimeSeconds: number;
  state: string;
  components: { name: string; status: 'up' | 'down' | 'idle'; required: boolean; detail: string | null; latencyMs: number }[];
}

export default function HealthPage() {
  const health = useQuery({
    queryKey: ['health'],
    queryFn: async (): Promise<HealthBody> => {
      const res = await fetch('/health', { cache: 'no-store' });
      const body = await res.json();
      if (!body.components) throw new Error(body.error?.message ?? `HTTP ${res.status}`);
      return body as HealthBody;
    },
    refetchInterval: 3000,
    staleTime: 0,
  });

  return (
    <main className="console" data-testid="health-page">
      <PageHead title="Health" sub="What the coordinator needs to train, checked every few seconds. A needed component down makes GET /health answer 503." />
      {health.isPending ? (
        <Loading what="health" />
      ) : health.isError ? (
        <Failed error={health.error} />
      ) : (
        <>
          <dl className="kv-grid">
            <div><dt>Overall</dt><dd className={health.data.status === 'ok' ? 'health-up' : 'health-down'} data-testid="health-status">{health.data.status}</dd></div>
            <div><dt>Version</dt><dd>{health.data.version}</dd></div>
            <div><dt>Uptime</dt><dd>{formatDurationMs(health.data.uptimeSeconds * 1000)}</dd></div>
            <div><dt>Session</dt><dd>{health.data.state}</dd></div>
          </dl>
          <section className="panel console-section">
            <table className="console-table" data-testid="health-components">
              <thead><tr><th>Component</th><th>State</th><th>Needed</th><th>Probe</th><th>Detail</th></tr></thead>
              <tbody>
                {health.data.components.map((c) => (
                  <tr key={c.name} data-testid={`component-${c.name}`} data-status={c.status}>
                    <td>{c.name}</td>
                    <td className={`health-${c.status}`}>{c.status}</td>
                    <td>{c.required ? 'yes' : 'no'}</td>
                    <td>{formatDurationMs(c.latencyMs)}</td>
                    <td style={{ whiteSpace: 'normal' }}>{c.detail ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </section>
        </>
      )}
    </main>
  );
}
