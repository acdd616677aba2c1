// The body of the agent's training thread: loads tfjs and the datasets configured on this machine, prepares
// sessions (session.ts) and runs rounds (training-loop.ts). A round's forward/backward passes block this thread
// for as long as they take, and that no longer matters: the link, its heartbeats and its watchdog live on the
// agent's main thread (training-thread.ts), which a long step cannot delay. src/agent/training.worker.ts wires
// this to parentPort.
import type { MessagePort } from 'node:worker_threads';

import { loadTf } from '../ml/backend';
import { DatasetRegistry } from '../ml/datasets/registry';
import { SessionSetup } from './session';
import {
  isToTrainingThread,
  TRAINING_THREAD_PROTOCOL_VERSION,
  type FromTrainingThread,
  type TrainingThreadData,
} from './training-thread-protocol';
import { TrainingLoop } from './training-loop';

export async function runTrainingWorker(port: MessagePort, data: TrainingThreadData): Promise<void> {
  const send = (message: FromTrainingThread, transfer?: ArrayBuffer[]): void => port.postMessage(message, transfer ?? []);
  const log = (line: string) => send({ v: 1, type: 'log', line });
  if (data?.v !== TRAINING_THREAD_PROTOCOL_VERSION) {
    send({ v: 1, type: 'init-error', message: `training thread speaks protocol v${TRAINING_THREAD_PROTOCOL_VERSION}, parent sent v${String(data?.v)}` });
    port.close();
    return;
  }
  let sessions: SessionSetup;
  try {
    const { tf, info } = await loadTf({ prefer: data.prefer, log });
    sessions = new SessionSetup(tf, log, new DatasetRegistry(new Map(data.datasets), log));
    send({ v: 1, type: 'init', backend: info });
  } catch (error) {
    send({ v: 1, type: 'init-error', message: error instanceof Error ? error.message : String(error) });
    port.close();
    return;
  }
  let nodeId: number | null = null;
  const training: TrainingLoop = new TrainingLoop({
    session: () => sessions.current(),
    link: {
      get nodeId() {
        return nodeId;
      },
      // The frame's buffer moves to the main thread, which sends it (or says it could not).
      sendFrame(bytes) {
        const round = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        send({ v: 1, type: 'update', round: round.byteLength >= 16 ? round.getUint32(12, true) : -1, bytes }, [bytes.buffer as ArrayBuffer]);
        return true;
      },
    },
    progress: {
      recordRound: (r) => send({ v: 1, type: 'round', durationMs: r.endedAt - r.startedAt, computeMs: r.computeMs, samples: r.samples, loss: r.loss }),
    },
    onActive: (round) => send({ v: 1, type: 'active', round, samplesPerSecond: training.samplesPerSecond }),
    log,
    microBatch: data.microBatch,
    simulate: data.simulate,
  });

  port.on('message', (message: unknown) => {
    if (!isToTrainingThread(message)) {
      log('training thread: ignored a message of an unknown protocol version');
      return;
    }
    switch (message.type) {
      case 'calibrate':
        sessions
          .calibrate(message.dataset, message.model)
          .then((measured) => {
            // A simulated slow machine says so from its first hello, as a real one would.
            const speed = measured * Math.min(1, data.simulate?.speed ?? 1);
            training.samplesPerSecond = speed;
            send({ v: 1, type: 'calibrated', samplesPerSecond: speed });
          })
          .catch((error) => send({ v: 1, type: 'calibrate-error', message: error instanceof Error ? error.message : String(error) }));
        return;
      case 'join':
        sessions.join(message.session, (sessionId) => send({ v: 1, type: 'ready', sessionId }));
        return;
      case 'model':
        training.onModelFrame({ header: message.header, values: message.values });
        return;
      case 'assign':
        training.assign(message.assignment);
        return;
      case 'cancel':
        training.cancel(message.round);
        return;
      case 'node':
        nodeId = message.nodeId;
        return;
      case 'stop':
        sessions.dispose();
        send({ v: 1, type: 'stopped' });
        port.close();
        return;
    }
  });
}
