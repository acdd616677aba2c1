'use client';
// Two sessions' curves on one chart: test accuracy and training loss by round, one colour per session.
import Link from 'next/link';
import { Suspense, useMemo } from 'react';
import { useRouter, useSearchParams } from 'next/navigation';
import { useQuery } from '@tanstack/react-query';
import { useTRPC } from '../../_trpc/client';
import { formatPercent, formatReal } from '../../_components/format';
import { LineChart, type ChartSeries } from '../../_components/line-chart';
import { PageHead } from '../../_components/console/page-head';
import { Failed } from '../../_components/console/states';

const COLORS = ['#34d399', '#f472b6'];

function Compare() {
  const trpc = useTRPC();
  const router = useRouter();
  const params = useSearchParams();
  const ids = [Number(params.get('a')), Number(params.get('b'))].filter((n) => Number.isInteger(n) && n > 0);
  const sessions = useQuery(trpc.training.summaries.queryOptions({ limit: 200 }));
  const a = useQuery({ ...trpc.training.metrics.queryOptions({ sessionId: ids[0] ?? 1, limit: 20_000 }), enabled: ids.length > 0 });
  const b = useQuery({ ...trpc.training.metrics.queryOptions({ sessionId: ids[1] ?? 1, limit: 20_000 }), enabled: ids.length > 1 });
  const histories = [a.data?.history, b.data?.history];
  const accuracy = useMemo<ChartSeries[]>(
    () => ids.map((id, i) => ({ key: `a${id}`, label: `#${id}`, color: COLORS[i], points: (histories[i] ?? []).filter((m) => m.testAccuracy !== null).map((m) => ({ x: m.round, y: m.testAccuracy! })) })),
    [ids.join(), a.data, b.data],
  );
  const loss = useMemo<ChartSeries[]>(
    () => ids.map((id, i) => ({ key: `l${id}`, label: `#${id}`, color: COLORS[i], points: (histories[i] ?? []).map((m) => ({ x: m.round, y: m.trainLoss })).filter((p) => Number.isFinite(p.y)) })),
    [ids.join(), a.data, b.data],
  );
  const pick = (slot: 'a' | 'b') => (event: { target: { value: string } }) => {
    const next = new URLSearchParams(params.toString());
    next.set(slot, event.target.value);
    router.replace(`/sessions/compare?${next.toString()}`);
  };
  const options = sessions.data?.map(({ session }) => (
    <option key={session.id} value={session.id}>
      #{session.id} {session.config.model} {session.state}
    </option>
  ));

  return (
    <main className="console" data-testid="compare-page">
      <PageHead
        title="Compare sessions"
        sub="Test accuracy and training loss by round."
        actions={
          <div className="filters">
            <label className="field"><span>First</span><select value={ids[0] ?? ''} onChange={pick('a')} data-testid="compare-a"><option value="" disabled>pick</option>{options}</select></label>
            <label className="field"><span>Second</span><select value={ids[1] ?? ''} onChange={pick('b')} data-testid="compare-b"><option value="" disabled>pick</option>{options}</select></label>
          </div>
        }
      />
      {(a.isError || b.isError) && <Failed error={(a.error ?? b.error)!} />}
      <div className="console-grid">
        <LineChart testId="compare-accuracy" title="Test accuracy" series={accuracy} formatY={(v) => formatPercent(v, 1)} yClamp={[0, 1]} emptyText="Pick two sessions" />
        <LineChart testId="compare-loss" title="Training loss" series={loss} formatY={formatReal} yFromZero emptyText="Pick two sessions" />
      </div>
      <p className="muted">
        {ids.map((id) => (
          <Link key={id} href={`/sessions/${id}`} style={{ marginRight: 12 }}>
            Session #{id}
          </Link>
        ))}
      </p>
    </main>
  );
}

export default function ComparePage() {
  return (
    <Suspense fallback={null}>
      <Compare />
    </Suspense>
  );
}
