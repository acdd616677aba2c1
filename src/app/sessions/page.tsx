'use client';
// Past sessions: outcome, duration, samples and best accuracy; pick two to compare their curves.
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import { useTRPC } from '../_trpc/client';
import { formatCompact, formatDurationMs, formatPercent } from '../_components/format';
import { PageHead } from '../_components/console/page-head';
import { Empty, Failed, Loading, StateBadge } from '../_components/console/states';

export default function SessionsPage() {
  const trpc = useTRPC();
  const router = useRouter();
  const list = useQuery({ ...trpc.training.summaries.queryOptions({ limit: 100 }), refetchInterval: 5000 });
  const [picked, setPicked] = useState<number[]>([]);
  const toggle = (id: number) => setPicked((p) => (p.includes(id) ? p.filter((x) => x !== id) : [...p, id].slice(-2)));

  return (
    <main className="console" data-testid="sessions-page">
      <PageHead
        title="Sessions"
        sub="Every training session this coordinator ran, newest first."
        actions={
          <>
            <button className="btn" data-testid="compare-button" disabled={picked.length !== 2} onClick={() => router.push(`/sessions/compare?a=${picked[0]}&b=${picked[1]}`)}>
              Compare {picked.length === 2 ? `#${picked[0]} and #${picked[1]}` : 'two'}
            </button>
            <Link className="btn btn-primary" href="/sessions/new" data-testid="new-session">
              New session
            </Link>
          </>
        }
      />
      <section className="panel console-section">
        {list.isPending ? (
          <Loading what="sessions" />
        ) : list.isError ? (
          <Failed error={list.error} />
        ) : list.data.length === 0 ? (
          <Empty testId="sessions-empty">
            No sessions yet. <Link href="/sessions/new">Start one</Link>.
          </Empty>
        ) : (
          <div className="table-scroll">
            <table className="console-table" data-testid="sessions-table">
              <thead>
                <tr>
                  <th aria-label="compare" />
                  <th>Session</th>
                  <th>Outcome</th>
                  <th>Model</th>
                  <th>Dataset</th>
                  <th>Started</th>
                  <th>Duration</th>
                  <th>Rounds</th>
                  <th>Samples</th>
                  <th>Best accuracy</th>
                </tr>
              </thead>
              <tbody>
                {list.data.map(({ session, durationMs, bestTestAccuracy }) => (
                  <tr key={session.id} data-testid={`session-row-${session.id}`}>
                    <td>
                      <input type="checkbox" aria-label={`compare session ${session.id}`} checked={picked.includes(session.id)} onChange={() => toggle(session.id)} />
                    </td>
                    <td>
                      <Link href={`/sessions/${session.id}`}>#{session.id}</Link>
                    </td>
                    <td>
                      <StateBadge state={session.state} />
                    </td>
                    <td>{session.config.model.toUpperCase()}</td>
                    <td>{session.config.dataset}</td>
                    <td>{new Date(session.startedAt).toLocaleString('en-US')}</td>
                    <td>{formatDurationMs(durationMs)}</td>
                    <td>{formatCompact(session.round)}</td>
                    <td>{formatCompact(session.totalSamples)}</td>
                    <td>{formatPercent(bestTestAccuracy)}</td>
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
