'use client';
// One node's contribution timeline: per epoch (accepted, audited, credited, forfeited, settled, claimed) and per
// round (delivered, accepted, late, rejected with the reason, the audit's outcome). Data: nodes.contributionTimeline.
import Link from 'next/link';
import { useQuery } from '@tanstack/react-query';
import { useTRPC } from '../../../_trpc/client';
import styles from './earnings.module.css';
import { formatTokens } from '../../../rewards/units';

type Outcome = 'pending' | 'pass' | 'fail' | 'error';

const OUTCOME_LABEL: Record<Outcome, string> = { pass: 'passed', fail: 'failed', error: 'not done', pending: 'pending' };

function when(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

function relErr(value: number | null): string {
  return value === null ? '—' : value.toExponential(2);
}

export function EarningsView({ id }: { id: string }) {
  const trpc = useTRPC();
  const query = useQuery({ ...trpc.nodes.contributionTimeline.queryOptions({ id }), refetchInterval: 5000, staleTime: 0 });

  if (query.isPending) return <main className="page"><p className="muted">Loading node {id}…</p></main>;
  if (query.isError) {
    return (
      <main className="page">
        <p className="banner banner-error" data-testid="earnings-error">{query.error.message}</p>
        <Link href="/">Back to the dashboard</Link>
      </main>
    );
  }
  const t = query.data;
  return (
    <main className="page" data-testid="earnings-page">
      <header className={styles.head}>
        <h1>
          {t.node.name} <span className="muted">#{t.node.id}</span>
        </h1>
        <p className="muted">
          Joined {when(t.node.firstSeenAt)}, last seen {when(t.node.lastSeenAt)}. <Link href="/">Dashboard</Link>
        </p>
      </header>

      <section className="panel" aria-label="totals">
        <div className={styles.totals} data-testid="earnings-totals">
          <span>delivered <b>{t.totals.delivered}</b></span>
          <span>accepted <b>{t.totals.accepted}</b></span>
          <span>late <b>{t.totals.late}</b></span>
          <span>rejected <b>{t.totals.rejected}</b></span>
          <span>audited <b>{t.totals.audited}</b></span>
          <span>audits failed <b>{t.totals.auditsFailed}</b></span>
          <span>credited samples <b>{t.totals.creditedSamples}</b></span>
          <span>forfeited samples <b>{t.totals.forfeitedSamples}</b></span>
        </div>
      </section>

      <section className="panel" aria-label="epochs">
        <div className="panel-head"><h2>Per epoch</h2></div>
        <p className="muted">A credit is payable once its epoch's audits pass; a failed audit forfeits the node's whole epoch.</p>
        <table className={styles.table} data-testid="earnings-epochs">
          <thead>
            <tr><th>session</th><th>epoch</th><th>accepted</th><th>samples</th><th>audits</th><th>credited</th><th>settled</th><th>claimed</th></tr>
          </thead>
          <tbody>
            {t.epochs.length === 0 && <tr><td colSpan={8} className="muted">No accepted work yet.</td></tr>}
            {t.epochs.map((e) => (
              <tr key={`${e.sessionId}/${e.epoch}`} data-testid="earnings-epoch" data-forfeited={e.forfeited}>
                <td>{e.sessionId}</td>
                <td>{e.epoch}</td>
                <td className={styles.num}>{e.acceptedUpdates}</td>
                <td className={styles.num}>{e.acceptedSamples}</td>
                <td>
                  {e.audits.pass} passed{e.audits.fail > 0 && <b className={styles.bad}>, {e.audits.fail} failed</b>}
                  {e.audits.error > 0 && `, ${e.audits.error} not done`}
                  {e.audits.pending > 0 && `, ${e.audits.pending} pending`}
                </td>
                <td className={styles.num}>
                  {e.forfeited ? <span className={styles.bad} title={e.forfeitReason ?? ''} data-testid="epoch-forfeited">forfeited: {e.forfeitReason}</span> : e.creditedSamples}
                </td>
                <td data-testid="epoch-settled">{formatTokens(e.settled)}</td>
                <td data-testid="epoch-claimed">{formatTokens(e.claimed)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      <section className="panel" aria-label="rounds">
        <div className="panel-head"><h2>Per round</h2></div>
        <table className={styles.table} data-testid="earnings-rounds">
          <thead>
            <tr><th>session</th><th>round</th><th>epoch</th><th>samples</th><th>outcome</th><th>reason</th><th>audit</th><th>credited</th><th>at</th></tr>
          </thead>
          <tbody>
            {t.rounds.length === 0 && <tr><td colSpan={9} className="muted">Nothing delivered yet.</td></tr>}
            {t.rounds.map((r) => (
              <tr key={`${r.sessionId}/${r.round}/${r.status}/${r.reasonCode ?? ''}`} data-testid="earnings-round" data-status={r.status}>
                <td>{r.sessionId}</td>
                <td>{r.round}</td>
                <td>{r.epoch ?? '—'}</td>
                <td className={styles.num}>{r.assignedSamples}</td>
                <td className={r.status === 'accepted' ? '' : styles.bad}>
                  {r.status}
                  {r.count > 1 ? ` ×${r.count}` : ''}
                </td>
                <td data-testid="round-reason">
                  {r.reasonCode && <code>{r.reasonCode}</code>} {r.reason}
                </td>
                <td data-testid="round-audit">
                  {r.audit ? (
                    <span className={r.audit.outcome === 'fail' ? styles.bad : ''} title={r.audit.detail ?? ''}>
                      {OUTCOME_LABEL[r.audit.outcome]} (error {relErr(r.audit.relativeError)}, tolerance {r.audit.tolerance})
                      {r.audit.detail ? `: ${r.audit.detail}` : ''}
                    </span>
                  ) : (
                    '—'
                  )}
                </td>
                <td className={styles.num}>{r.forfeited ? <span className={styles.bad}>forfeited</span> : r.creditedSamples}</td>
                <td className="muted">{when(r.at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>

      {t.events.length > 0 && (
        <section className="panel" aria-label="events">
          <div className="panel-head"><h2>Events</h2></div>
          <ul className={styles.events}>
            {t.events.map((e, i) => (
              <li key={i}>
                <span className="muted">{when(e.at)}</span> <code>{e.kind}</code> {e.message}
              </li>
            ))}
          </ul>
        </section>
      )}
    </main>
  );
}
