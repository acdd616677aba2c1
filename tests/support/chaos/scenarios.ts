// The chaos scenarios. Each one hurts a running session in one way and says what must hold afterwards;
// the harness adds the checks every scenario shares (completed, accuracy within 1 point of the baseline,
// ledger exactly-once, failure-detection latencies). Faults are timed by the session's progress (share of
// the sample budget applied, node status) read from the REST API, never by fixed sleeps alone.
import { contributorsByRound, median, roundDuration, type RunRecord } from './analysis';
import type { Injection } from './cluster';
import { runRogue } from './rogue';
import type { ScenarioContext, ScenarioDefinition } from './types';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const live = (n: { status: string }) => n.status === 'idle' || n.status === 'training';

/** How long a partition lasts: longer than the agent's own dead-link timeout (3 s), so it must notice. */
export const PARTITION_MS = 4000;
/** The slow link of high-latency (one way, both directions). */
export const SLOW_LINK_MS = 500;

function victimIds(run: RunRecord, actions: Injection['action'][]): number[] {
  return [...new Set(run.injections.filter((i) => actions.includes(i.action) && typeof i.nodeId === 'number').map((i) => i.nodeId as number))];
}

/** SIGKILL an agent, waiting first (bounded) until it is in the middle of a round. */
async function killMidRound(ctx: ScenarioContext, index: number): Promise<Injection> {
  const c = ctx.cluster;
  try {
    await c.waitForTraining(index, 10_000);
  } catch {
    ctx.note(`${c.agents[index].name} was not seen training within 10 s; killed while idle`);
  }
  const injection = await c.killAgent(index);
  await c.waitForFailed(index, injection.at, 10_000);
  return injection;
}

const nodeCrash: ScenarioDefinition = {
  name: 'node-crash',
  description: 'SIGKILL one agent mid-round; the others carry the session to the end without it',
  async run(ctx) {
    const c = ctx.cluster;
    await c.waitForProgress(0.3);
    const injection = await killMidRound(ctx, 1);
    ctx.metric('killedAtRound', c.latestStatus()?.round ?? null);
    ctx.metric('killedNode', injection.nodeId ?? null);
    const s = await c.status();
    await c.waitForAppliedRounds(s.modelVersion, 5);
  },
  analyze(ctx, run) {
    const [victim] = victimIds(run, ['sigkill']);
    const killedAt = run.injections.find((i) => i.action === 'sigkill')!.at;
    const byRound = contributorsByRound(run.contributions);
    const after = run.rounds.filter((r) => r.applied && r.openedAt > killedAt + 50);
    const withVictim = after.filter((r) => byRound.get(r.round)?.has(victim));
    ctx.check('training continued without the killed node', after.length >= 5 && withVictim.length === 0, `${after.length} rounds applied after the kill, ${withVictim.length} of them credit the dead node`);
  },
};

const partition: ScenarioDefinition = {
  name: 'partition',
  description: `blackhole 2 agents' links for ${PARTITION_MS / 1000} s (sockets stay open), then heal: detected, excluded, readmitted`,
  async run(ctx) {
    const c = ctx.cluster;
    const cut = [0, 1];
    await c.waitForProgress(0.2);
    const injections = c.partition(cut);
    const start = injections[0].at;
    await Promise.all(cut.map((i) => c.waitForFailed(i, start, 5000)));
    // The partition itself lasts a fixed time (that is the fault); the system is watched meanwhile.
    await sleep(Math.max(0, start + PARTITION_MS - Date.now()));
    const healAt = Date.now();
    c.heal(cut);
    ctx.metric('partitionMs', healAt - start);
    const back = await c.waitForNodes(cut, live, 'the partitioned agents to be readmitted', 30_000, healAt);
    ctx.metric('readmittedAfterHealMs', Math.max(...back.map((n) => (n.statusChangedAt ?? Date.now()) - healAt)));
    // Give them a chance to contribute again before the budget runs out (bounded; the session may end first).
    const ids = back.map((n) => n.id);
    const before = new Map(back.map((n) => [n.id, n.acceptedContributions]));
    await c
      .until(
        'the readmitted agents to contribute',
        async () => (await c.sample()),
        ({ status, nodes }) => !!status && (status.state !== 'running' || (!!nodes && ids.every((id) => (nodes.find((n) => n.id === id)?.acceptedContributions ?? 0) > (before.get(id) ?? 0)))),
        20_000,
      )
      .catch(() => undefined);
  },
  analyze(ctx, run) {
    const c = ctx.cluster;
    const cutIds = victimIds(run, ['blackhole']);
    const start = run.injections.find((i) => i.action === 'blackhole')!.at;
    const healAt = run.injections.find((i) => i.action === 'heal')!.at;
    const detectedAt = Math.max(
      ...cutIds.map((id) => run.transitions.find((t) => t.nodeId === id && t.status === 'failed' && (t.statusChangedAt ?? t.observedAt) >= start)?.statusChangedAt ?? healAt),
    );
    const byRound = contributorsByRound(run.contributions);
    const during = run.rounds.filter((r) => r.applied && r.openedAt >= detectedAt && r.closedAt <= healAt);
    const leaked = during.filter((r) => cutIds.some((id) => byRound.get(r.round)?.has(id)));
    ctx.check('partitioned nodes excluded, training went on', during.length >= 2 && leaked.length === 0, `${during.length} rounds applied during the partition after detection, ${leaked.length} credit a partitioned node`);
    const readmitted = cutIds.filter((id) => run.transitions.some((t) => t.nodeId === id && (t.status === 'idle' || t.status === 'training') && (t.statusChangedAt ?? t.observedAt) >= healAt));
    ctx.check('partitioned nodes readmitted after the heal', readmitted.length === cutIds.length, `${readmitted.length} of ${cutIds.length} back`);
    const contributedAfter = cutIds.filter((id) => run.rounds.some((r) => r.applied && r.openedAt >= healAt && byRound.get(r.round)?.has(id)));
    const endedSoon = run.rounds.filter((r) => r.openedAt >= healAt).length < 10;
    ctx.check('readmitted nodes contribute again', contributedAfter.length === cutIds.length, `${contributedAfter.length} of ${cutIds.length} contributed after the heal${endedSoon ? ' (the session ended soon after the heal)' : ''}`, endedSoon);
    // The agent must notice a link that went silent without closing, by itself, during the partition.
    const noticed = [0, 1].map((i) => {
      const lines = c.agents[i].history.flatMap((p) => p.lines());
      const line = lines.find((l) => l.at >= start && l.at < healAt && /coordinator silent|dropping the connection|reconnecting in/.test(l.text));
      return line ? line.at - start : null;
    });
    ctx.metric('agentNoticedDeadLinkMs', noticed.map((n) => (n === null ? 'never' : String(n))).join(', '));
    ctx.check('agents noticed the dead link themselves', noticed.every((n) => n !== null), `after ${noticed.map((n) => (n === null ? 'never' : `${n} ms`)).join(', ')} (partition ${PARTITION_MS} ms)`);
  },
};

/**
 * "Not stalled": rounds that go ahead without the slow node take at most this multiple of the baseline's
 * median round (or the baseline plus ROUND_SLACK_MS, for very short baseline rounds).
 */
export const MAX_ROUND_SLOWDOWN = 2;
export const ROUND_SLACK_MS = 100;
/** Rounds observed with the slow link in place before it is healed (bounds the scenario's run time). */
const SLOW_WINDOW_ROUNDS = 60;

const highLatency: ScenarioDefinition = {
  name: 'high-latency',
  description: `one agent behind a ${SLOW_LINK_MS} ms one-way link; the other agents' rounds are not held up by it`,
  async run(ctx) {
    const c = ctx.cluster;
    await c.waitForProgress(0.15);
    c.setLatency(3, SLOW_LINK_MS);
    const s = await c.status();
    const until = await c.until(
      `${SLOW_WINDOW_ROUNDS} rounds with the slow link`,
      () => c.api.status().catch(() => null),
      (x) => !!x && (x.round >= s.round + SLOW_WINDOW_ROUNDS || x.state !== 'running'),
      90_000,
    );
    ctx.metric('slowWindowRounds', until!.round - s.round);
    c.setLatency(3, 0);
  },
  analyze(ctx, run) {
    const latency = run.injections.filter((i) => i.action === 'latency');
    const slowAt = latency[0].at;
    const healAt = latency[1]?.at ?? Number.POSITIVE_INFINITY;
    const [slow] = victimIds(run, ['latency']);
    const byRound = contributorsByRound(run.contributions);
    // Rounds opened while the slow link was in place (skip the first second: rounds already in flight).
    const window = run.rounds.filter((r) => r.applied && r.openedAt >= slowAt + 1000 && r.closedAt <= healAt);
    const without = window.filter((r) => !byRound.get(r.round)?.has(slow));
    const withSlow = window.filter((r) => byRound.get(r.round)?.has(slow));
    const med = median(without.map(roundDuration));
    const medWith = median(withSlow.map(roundDuration));
    const base = ctx.baseline.medianRoundMs ?? 0;
    const limit = Math.max(MAX_ROUND_SLOWDOWN * base, base + ROUND_SLACK_MS);
    const rejectedSlow = run.contributions.filter((x) => x.nodeId === slow && x.status === 'rejected' && x.receivedAt >= slowAt && x.receivedAt <= healAt).length;
    ctx.metric('roundsWithoutSlowNode', without.length);
    ctx.metric('roundsWithSlowNode', withSlow.length);
    ctx.metric('slowNodeUpdatesRejected', rejectedSlow);
    ctx.metric('medianRoundMsWithoutSlowNode', med);
    ctx.metric('medianRoundMsWithSlowNode', medWith);
    ctx.metric('baselineMedianRoundMs', base);
    ctx.check('most rounds go ahead without the slow node', without.length >= Math.max(5, window.length / 2), `${without.length} of ${window.length} rounds with the slow link did not wait for it`);
    ctx.check(
      'rounds without the slow node are not held up',
      med !== null && med < SLOW_LINK_MS,
      `median ${med?.toFixed(0) ?? '-'} ms, under the slow link's one-way ${SLOW_LINK_MS} ms: no round waited for its round trip`,
    );
    ctx.check(
      `rounds without the slow node stay within ${MAX_ROUND_SLOWDOWN}x the baseline`,
      med !== null && med <= limit,
      `median ${med?.toFixed(0) ?? '-'} ms vs baseline ${base.toFixed(0)} ms (limit ${limit.toFixed(0)} ms); with the slow node ${medWith?.toFixed(0) ?? '-'} ms; ${rejectedSlow} late updates of the slow node rejected`,
    );
  },
};

const cascading: ScenarioDefinition = {
  name: 'cascading',
  description: 'SIGKILL 3 of 4 agents one after another (training goes on after each), then bring them back',
  async run(ctx) {
    const c = ctx.cluster;
    const victims = [0, 1, 2];
    await c.waitForProgress(0.12);
    const perKill: number[] = [];
    for (const [n, v] of victims.entries()) {
      await killMidRound(ctx, v);
      const s = await c.status();
      // Training goes on with who is left before the next one falls (longer after the last: one agent alone).
      const after = await c.waitForAppliedRounds(s.modelVersion, n === victims.length - 1 ? 6 : 4, 30_000);
      perKill.push(after.modelVersion - s.modelVersion);
    }
    ctx.metric('roundsAfterEachKill', perKill.join(', '));
    const since = Date.now();
    await Promise.all(victims.map((v) => c.restartAgent(v)));
    ctx.metric('restartedAgentsBackMs', Date.now() - since);
  },
  analyze(ctx, run) {
    const kills = run.injections.filter((i) => i.action === 'sigkill');
    const restarts = run.injections.filter((i) => i.action === 'agent-start' && i.at > kills[kills.length - 1].at);
    const byRound = contributorsByRound(run.contributions);
    // Rounds applied between one kill and the next (or the restarts).
    const segments = kills.map((k, i) => {
      const end = kills[i + 1]?.at ?? restarts[0]?.at ?? Number.POSITIVE_INFINITY;
      return run.rounds.filter((r) => r.applied && r.closedAt > k.at && r.closedAt < end).length;
    });
    ctx.check('training continued after every kill', segments.every((n) => n >= 3), `rounds applied after kill 1, 2, 3: ${segments.join(', ')}`);
    const lone = run.rounds.filter((r) => r.applied && r.closedAt > kills[2].at && r.closedAt < (restarts[0]?.at ?? Infinity) && (byRound.get(r.round)?.size ?? 0) === 1);
    ctx.check('the last agent trained alone', lone.length >= 3, `${lone.length} rounds with a single update`);
    const killedIds = kills.map((k) => k.nodeId);
    const back = killedIds.filter((id) => run.nodes.some((n) => n.id === id && live(n)));
    ctx.check('killed agents came back under their node ids', back.length === killedIds.length, `${back.length} of ${killedIds.length} live again with the same id`);
  },
};

const coordinatorCrash: ScenarioDefinition = {
  name: 'coordinator-crash',
  description: 'kill -9 the coordinator mid-round, restart it on the same data: it recovers, agents come back by themselves',
  async run(ctx) {
    const c = ctx.cluster;
    await c.waitForProgress(0.4);
    // Mid-round: a round open with nodes training, and rounds applied since the last checkpoint.
    const every = c.config.checkpointEvery;
    const before = await c.until('a round in flight past a checkpoint', () => c.api.status().catch(() => null), (s) => !!s && s.nodes.training > 0 && s.round % every >= 1 && s.round % every <= every - 2, 20_000, 5);
    const lastSeen = c.statusSamples.at(-1);
    ctx.metric('killedAtRound', before!.round);
    ctx.metric('modelVersionBeforeCrash', Math.max(before!.modelVersion, lastSeen?.modelVersion ?? 0));
    await c.killServer();
    const killedAt = Date.now();
    await c.restartServer();
    const up = Date.now();
    ctx.metric('killToSessionResumedMs', up - killedAt);
    const s = await c.status();
    ctx.metric('modelVersionAfterRestart', s.modelVersion);
    ctx.metric('resumedSessionId', s.sessionId);
    ctx.metric('stateAfterRestart', s.state);
    const back = await c.waitForNodes(c.agents.map((a) => a.index), live, 'every agent to reconnect by itself', 30_000, up);
    ctx.metric('agentsBackAfterRestartMs', Math.max(...back.map((n) => (n.statusChangedAt ?? Date.now()) - up)));
  },
  analyze(ctx, run) {
    const metrics = ctx.metrics;
    const sessionId = ctx.cluster.sessionId;
    ctx.check('the same session resumed', metrics.resumedSessionId === sessionId, `session ${metrics.resumedSessionId} after the restart, ${sessionId} before`);
    const lost = (metrics.modelVersionBeforeCrash as number) - (metrics.modelVersionAfterRestart as number);
    // /api/status shows a model version only once its round's transaction committed (the engine applies after
    // the commit), and a commit is durable when it resolves: every version seen before the kill must survive.
    ctx.check('no committed round lost in the crash', lost <= 0, `model version ${metrics.modelVersionBeforeCrash} seen before the kill, ${metrics.modelVersionAfterRestart} after the restart`);
    const resumed = ctx.cluster.servers[1]?.lines().find((l) => /resum|recover/i.test(l.text));
    if (resumed) ctx.note(`restart: ${resumed.text.trim()}`);
  },
};

const noGradientLoss: ScenarioDefinition = {
  name: 'no-gradient-loss',
  description: 'an agent killed mid-round, one partitioned with updates in flight, and the coordinator killed between checkpoints: every sample is applied exactly once',
  async run(ctx) {
    const c = ctx.cluster;
    await c.waitForProgress(0.2);
    await killMidRound(ctx, 1);
    const restarting = c.restartAgent(1);
    restarting.catch(() => undefined); // awaited below; a failure surfaces there
    await c.waitForProgress(0.4);
    try {
      await c.waitForTraining(2, 10_000);
    } catch {
      // partition it anyway
    }
    const [cut] = c.partition([2]);
    await c.waitForFailed(2, cut.at, 5000);
    c.heal([2]);
    await restarting;
    await c.waitForProgress(0.6);
    const every = c.config.checkpointEvery;
    await c.until('a round in flight between checkpoints', () => c.api.status().catch(() => null), (s) => !!s && s.nodes.training > 0 && s.round % every >= 2, 20_000, 5);
    await c.killServer();
    await c.restartServer();
    await c.waitForNodes(c.agents.map((a) => a.index), live, 'every agent back after the coordinator restart', 30_000);
  },
  analyze(ctx, run) {
    const l = run.ledger as Record<string, any> | null;
    const epochs = Array.isArray(l?.epochs) ? (l!.epochs as { epoch: number; overlapping: number; skipped: number; pending: number }[]) : [];
    const skipped = epochs.reduce((s, e) => s + (e.skipped ?? 0), 0);
    const overlapping = epochs.reduce((s, e) => s + (e.overlapping ?? 0), 0);
    ctx.metric('epochs', epochs.map((e) => `${e.epoch}: covered ${(e as any).covered}, pending ${e.pending}`).join('; '));
    ctx.check('no sample skipped or trained twice (ledger epochs)', l !== null && skipped === 0 && overlapping === 0, `${skipped} skipped, ${overlapping} twice`);
    const total = run.status.session?.totalSamples ?? 0;
    ctx.check('the whole sample budget was applied', total >= ctx.cluster.config.maxSamples, `${total} of ${ctx.cluster.config.maxSamples}`);
  },
};

const noDuplicateGradients: ScenarioDefinition = {
  name: 'no-duplicate-gradients',
  description: 'a rogue client replays a valid update (same connection, a reconnect, after the round closed): applied once, replays rejected and recorded',
  async run(ctx) {
    const c = ctx.cluster;
    await c.waitForProgress(0.25);
    const report = await runRogue(`ws://127.0.0.1:${c.port}/agent`, c.api, 'chaos-rogue', c.config.heartbeatMs);
    c.injections.push({ at: Date.now(), action: 'rogue', nodeId: report.nodeId, note: JSON.stringify(report) });
    ctx.metric('rogueNode', report.nodeId);
    ctx.metric('rogueRound', report.round);
    ctx.metric('rogueFirst', report.first.type);
    ctx.metric('rogueReplays', report.replays.map((r) => `${r.phase}${r.roundOpen ? ' (round not applied yet)' : r.roundOpen === false ? ' (round applied)' : ''}: ${r.type}${r.code ? ` ${r.code}` : ''}`).join('; '));
    ctx.check('the valid update was accepted', report.first.type === 'accepted', `coordinator answered ${report.first.type} ${report.first.code ?? ''}`);
    for (const r of report.replays) ctx.check(`replay (${r.phase}) rejected`, r.type === 'rejected', `${r.type} ${r.code ?? ''}: ${r.reason ?? ''}`);
  },
  analyze(ctx, run) {
    const rogue = run.injections.find((i) => i.action === 'rogue');
    if (!rogue) return;
    const report = JSON.parse(rogue.note!) as { nodeId: number; round: number; replays: { code?: string }[] };
    const mine = run.contributions.filter((x) => x.nodeId === report.nodeId);
    const applied = mine.filter((x) => x.status === 'applied');
    const rejected = mine.filter((x) => x.status === 'rejected');
    ctx.check('the rogue update was applied exactly once', applied.length === 1 && applied[0].round === report.round, `${applied.length} applied (rounds ${applied.map((a) => a.round).join(', ') || '-'})`);
    // Identical rejections (same round, node and reason) are one row with a count since rejections are tallied.
    const rejections = rejected.reduce((n, r) => n + (typeof r.count === 'number' ? r.count : 1), 0);
    ctx.check('every replay is recorded with its reason', rejections >= report.replays.length, `${rejections} rejections recorded for the rogue node: ${rejected.map((r) => `${r.reason?.split(':')[0]}${typeof r.count === 'number' && r.count > 1 ? ` x${r.count}` : ''}`).join(', ')}`);
    const byReason = run.ledger?.rejectedByReason ?? {};
    const codes = report.replays.map((r) => r.code).filter((x): x is string => !!x);
    ctx.check('the ledger counts the replays by reason', codes.every((code) => (byReason[code] ?? 0) > 0), `ledger rejectedByReason ${JSON.stringify(byReason)}`);
    ctx.check('no update applied twice (ledger duplicates = 0)', (run.ledger?.duplicates ?? 0) === 0, `duplicates ${run.ledger?.duplicates ?? '-'}`);
  },
};

const failureDetection: ScenarioDefinition = {
  name: 'failure-detection',
  description: 'SIGSTOP an agent 3 times (silent, socket open) and SIGKILL two (closed connection): time until the coordinator marks each failed',
  async run(ctx) {
    const c = ctx.cluster;
    await c.waitForProgress(0.12);
    for (let i = 0; i < 3; i++) {
      const s = await c.status();
      const stop = c.signalAgent(0, 'SIGSTOP');
      await c.waitForFailed(0, stop.at, 5000);
      const contAt = Date.now();
      c.signalAgent(0, 'SIGCONT');
      await c.waitForNodes([0], live, `${c.agents[0].name} back after SIGCONT`, 20_000, contAt);
      await c.waitForAppliedRounds(s.modelVersion, 2);
    }
    await killMidRound(ctx, 1);
    const idle = await c.killAgent(2);
    await c.waitForFailed(2, idle.at, 5000);
    await Promise.all([c.restartAgent(1), c.restartAgent(2)]);
  },
};

const undisturbed: ScenarioDefinition = {
  name: 'undisturbed',
  description: 'control: a second undisturbed run; its accuracy shows the baseline noise',
  async run() {
    // nothing: the session runs to its end
  },
};

export const SCENARIOS: ScenarioDefinition[] = [
  nodeCrash,
  partition,
  highLatency,
  cascading,
  coordinatorCrash,
  noGradientLoss,
  noDuplicateGradients,
  failureDetection,
  undisturbed,
];

export function scenarioByName(name: string): ScenarioDefinition {
  const found = SCENARIOS.find((s) => s.name === name);
  if (!found) throw new Error(`unknown scenario ${name}; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  return found;
}
