'use client';
// Connected node agents. The heartbeat column counts up between events (a 1 s timer re-renders this table
// only), and so does how long each node has been in its status; times are compared on the server's clock
// (clockOffsetMs) so a skewed browser clock reads right.
import { useEffect, useState } from 'react';
import type { NodeSnapshot } from '../../server/core/types';
import { formatAgo, formatBytesPerSecond, formatCompact, formatInt, formatSince } from './format';
import { sortNodes } from './live-state';
import { useNow } from './use-live-dashboard';

/** A heartbeat older than this is shown as late. */
const LATE_HEARTBEAT_MS = 10_000;
/** An outlier score at or above this is highlighted (the coordinator names such nodes in its log too). */
const OUTLIER_WARN = 5;

export function NodeTable({ nodes, clockOffsetMs }: { nodes: NodeSnapshot[]; clockOffsetMs: number }) {
  const now = useNow(1000) + clockOffsetMs;
  // Known only in the browser (server rendering has no location), hence the effect.
  const [agentUrl, setAgentUrl] = useState('ws://<this-host>/agent');
  useEffect(() => setAgentUrl(`${window.location.protocol === 'https:' ? 'wss' : 'ws'}://${window.location.host}/agent`), []);
  const sorted = sortNodes(nodes);
  const working = nodes.filter((n) => n.status === 'idle' || n.status === 'training').length;
  return (
    <section className="panel node-panel">
      <header className="panel-head">
        <h2>Nodes</h2>
        <span className="panel-meta">
          {working} working · {nodes.length} known
        </span>
      </header>
      <div className="table-scroll">
        <table className="node-table" data-testid="node-table">
          <thead>
            <tr>
              <th>Node</th>
              <th>Status</th>
              <th>Backend</th>
              <th>Device</th>
              <th className="num">Samples/s</th>
              <th className="num" title="Round trip of the node's link (WebSocket ping), smoothed">
                RTT
              </th>
              <th className="num" title="Upload bandwidth measured from its update frames' transfer times, smoothed">
                Upload
              </th>
              <th className="num" title="Distance of its last update from the round's aggregate, over the round's median distance (1: typical)">
                Outlier
              </th>
              <th className="num">Heartbeat</th>
              <th className="num" title="Updates accepted into applied rounds this session (rejected ones after the slash)">
                Accepted
              </th>
              <th className="num" title="Samples accepted into applied rounds this session">
                Samples
              </th>
            </tr>
          </thead>
          <tbody>
            {sorted.length === 0 ? (
              <tr className="empty-row">
                <td colSpan={11}>
                  No nodes connected. Start one with <code>npm run agent -- --coordinator {agentUrl}</code>
                </td>
              </tr>
            ) : (
              sorted.map((node) => {
                const ago = now - node.lastHeartbeatAt;
                const late = (node.status === 'idle' || node.status === 'training') && ago > LATE_HEARTBEAT_MS;
                // statusChangedAt is missing from an older coordinator's snapshots.
                const since = Number.isFinite(node.statusChangedAt) && node.statusChangedAt > 0 ? now - node.statusChangedAt : null;
                return (
                  <tr key={node.id} data-testid="node-row" data-status={node.status} data-node-id={node.id} className={`status-${node.status}`}>
                    <td title={`#${node.id}${node.capabilities.hostname ? ` on ${node.capabilities.hostname}` : ''}, agent ${node.capabilities.agentVersion}`}>
                      <div className="node-name">{node.name}</div>
                      <div className="sub">#{node.id}</div>
                    </td>
                    <td>
                      <span className={`pill pill-${node.status}`} data-testid="node-status">
                        {node.status}
                        {node.status === 'training' && node.currentRound !== null ? ` r${node.currentRound}` : ''}
                      </span>
                      {since !== null && (
                        <span
                          className="status-since"
                          data-testid="node-status-since"
                          title={`${node.status} since ${new Date(node.statusChangedAt).toISOString()}`}
                        >
                          {' '}
                          {formatSince(since)}
                        </span>
                      )}
                      {node.statusReason && (
                        <div className="sub reason" title={node.statusReason}>
                          {node.statusReason}
                        </div>
                      )}
                    </td>
                    <td data-testid="node-backend">
                      <code>{node.capabilities.backend || '—'}</code>
                    </td>
                    <td className="device" title={node.capabilities.device}>
                      {node.capabilities.device || '—'}
                    </td>
                    <td className="num">
                      {formatCompact(Math.round(node.samplesPerSecond || node.capabilities.samplesPerSecond))}
                      {typeof node.computeShare === 'number' && (
                        <div className="sub" data-testid="node-compute-share" title="Time computing over wall time over its recent rounds, as the agent measured it">
                          computing {Math.round(node.computeShare * 100)}%
                        </div>
                      )}
                    </td>
                    <td className="num" data-testid="node-rtt">
                      {node.rttMs === null || node.rttMs === undefined ? '—' : `${node.rttMs < 10 ? node.rttMs.toFixed(1) : Math.round(node.rttMs)} ms`}
                    </td>
                    <td className="num" data-testid="node-upload">
                      {formatBytesPerSecond(node.uploadBytesPerSecond)}
                    </td>
                    <td className={`num${(node.outlierScore ?? 0) >= OUTLIER_WARN ? ' late' : ''}`} data-testid="node-outlier">
                      {node.outlierScore === null || node.outlierScore === undefined ? '—' : node.outlierScore.toFixed(2)}
                    </td>
                    <td className={`num${late ? ' late' : ''}`} title={new Date(node.lastHeartbeatAt).toISOString()}>
                      {formatAgo(ago)}
                    </td>
                    <td className="num">
                      {formatInt(node.acceptedContributions)}
                      {node.rejectedContributions > 0 && (
                        <span className="rejected" title="rejected">
                          {' '}
                          / {formatInt(node.rejectedContributions)}
                        </span>
                      )}
                    </td>
                    <td className="num">{formatCompact(node.acceptedSamples)}</td>
                  </tr>
                );
              })
            )}
          </tbody>
        </table>
      </div>
    </section>
  );
}
