// Overlap: a lone agent's compute utilisation with and without overlap (it trains its next shard while its update
// travels, the round commits and the next model comes back), at small H where that round trip is a visible share of
// the round, and the final test accuracy of both on the same sample budget. Real server, one real agent process,
// real MNIST; bench/comm.ts's machinery (runMode).
//   npm run bench -- overlap          (about 4 minutes on 2 shared cores: H = 8 and 16, float32 and int8, off and on)
//   HYPERGPU_BENCH_OVERLAP_SAMPLES=30720 npm run bench -- overlap    another budget
import { atLeast, fmt, row, sleep, waitFor, type BenchOptions, type BenchOutcome, type Benchmark, type Row } from './lib/common';
import { getJson, spawnAgent, startServer, startSession, waitForNodes, type AgentHandle, type ServerHandle } from './lib/procs';
import { describe, runMode, type Mode, type Outcome } from './comm';

const PAIRS: Mode[] = [
  { label: 'local steps', localSteps: 8, batchSize: 32, codec: 'float32' },
  { label: 'local steps', localSteps: 8, batchSize: 32, codec: 'int8' },
  { label: 'local steps', localSteps: 16, batchSize: 32, codec: 'float32' },
  { label: 'local steps', localSteps: 16, batchSize: 32, codec: 'int8' },
];

export const overlap: Benchmark = {
  name: 'overlap',
  title: 'Overlap: a lone agent keeps computing during the round trip (local steps, small H)',
  inDefault: false,
  async run({ quick, log }: BenchOptions): Promise<BenchOutcome> {
    const budget = Number(process.env.HYPERGPU_BENCH_OVERLAP_SAMPLES ?? (quick ? 4096 : 61_440));
    const pairs = quick ? [PAIRS[1]] : PAIRS;
    const agents: AgentHandle[] = [];
    let server: ServerHandle | null = null;
    const outcomes: Outcome[] = [];
    try {
      server = await startServer();
      agents.push(spawnAgent(server.agentUrl, 'overlap-1'));
      await waitForNodes(server, ['overlap-1'], 180_000);
      const paramCount = (await startSession(server, { model: 'mlp', maxRounds: 1 }), await getJson(`${server.baseUrl}/api/model`)).paramCount as number;
      await waitFor(() => getJson(`${server!.baseUrl}/api/status`), (s) => s.session?.state !== 'running', 120_000, 'the probe session to end', 200);
      await sleep(500);
      log(`MLP with ${paramCount} parameters; 1 agent; ${budget} samples per run`);
      // Off then on for each setting, back to back, so both see the same load.
      for (const mode of pairs) {
        // About eight evaluations a run: the comparison also takes the mean of the last three (one is noisy).
        const evalEvery = Math.max(1, Math.round(budget / (mode.localSteps * mode.batchSize) / 8));
        outcomes.push(await runMode(server, { ...mode, agents: 1, evalEvery }, 1, budget, paramCount, log));
        outcomes.push(await runMode(server, { ...mode, agents: 1, evalEvery, overlap: true }, 1, budget, paramCount, log));
      }
    } finally {
      await Promise.all(agents.map((a) => a.stop()));
      await server?.stop();
    }
    const rows: Row[] = [];
    for (const o of outcomes) {
      rows.push(
        row(
          describe(o),
          `computing ${o.utilisation === null ? '-' : `${fmt(o.utilisation * 100, 1)}%`}, ${o.rounds} rounds, ${fmt(o.wallS, 1)} s, accuracy ${fmt(o.accuracy * 100, 2)}%` +
            (o.lateAccuracy === undefined ? '' : ` (last 3 evaluations ${fmt(o.lateAccuracy * 100, 2)}%)`),
          o.utilisation,
          '%',
        ),
      );
    }
    for (const mode of pairs) {
      const off = outcomes.find((o) => o.localSteps === mode.localSteps && o.codec === mode.codec && !o.overlap)!;
      const on = outcomes.find((o) => o.localSteps === mode.localSteps && o.codec === mode.codec && o.overlap)!;
      const delta = (on.accuracy - off.accuracy) * 100;
      const late = on.lateAccuracy !== undefined && off.lateAccuracy !== undefined ? (on.lateAccuracy - off.lateAccuracy) * 100 : null;
      const gain = on.utilisation !== null && off.utilisation !== null ? (on.utilisation - off.utilisation) * 100 : null;
      const what = `H=${mode.localSteps} x ${mode.batchSize}, ${mode.codec}, 1 agent`;
      rows.push(
        row(
          `overlap vs none, ${what}: utilisation`,
          gain === null ? '-' : `${fmt(off.utilisation! * 100, 1)}% -> ${fmt(on.utilisation! * 100, 1)}% (${gain >= 0 ? '+' : ''}${fmt(gain, 1)} points), wall ${fmt(off.wallS, 1)} s -> ${fmt(on.wallS, 1)} s`,
          on.utilisation,
          '%',
          '>= 90%',
          on.utilisation === null ? { verdict: 'MISSED', note: 'not reported' } : atLeast(on.utilisation * 100, 90, ' points'),
        ),
      );
      rows.push(
        row(
          `overlap vs none, ${what}: final accuracy, same ${budget} samples`,
          `${fmt(off.accuracy * 100, 2)}% -> ${fmt(on.accuracy * 100, 2)}% (${delta >= 0 ? '+' : ''}${fmt(delta, 2)} points)` +
            (late === null ? '' : `; mean of the last 3 evaluations ${fmt(off.lateAccuracy! * 100, 2)}% -> ${fmt(on.lateAccuracy! * 100, 2)}% (${late >= 0 ? '+' : ''}${fmt(late, 2)})`),
          delta,
          'points',
          'within 0.5 point',
          delta >= -0.5 ? { verdict: 'met' } : { verdict: 'MISSED', note: `${fmt(-delta, 2)} points lower` },
        ),
      );
    }
    return {
      rows,
      notes: [
        `One agent on the same server for every run (MLP 784-128-64-10, Adam inner lr 0.002, Nesterov outer lr 0.7, momentum 0.9, session seed 42), ${budget} samples per run, each setting without then with overlap, back to back.`,
        'Utilisation is what the agent measures on itself (time in the trainer, the inner optimizer and the encoder over the wall time its last 20 rounds spanned), reported with its heartbeats, averaged over the polls in the second half of each run.',
        'With overlap the agent starts its next shard from the model it predicts (the session’s Nesterov step on its own update, momentum tracked from the models it receives: eager updates), and re-bases onto the real model when it arrives.',
        'Each figure is one run. The final accuracy is one evaluation of the final model; the outer Nesterov step makes it swing by tenths of a point from round to round, so the mean of the last three evaluations (about every eighth of the budget) is given beside it.',
      ],
      details: { budget, outcomes },
    };
  },
};
