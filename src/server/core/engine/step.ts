// The coordinator's decisions as one pure function: step(state, event) -> { state, effects }.
// No I/O, no clock, no randomness: time arrives on events, everything the outside world must do leaves as
// effects. The runner (services/runner.ts) feeds it and carries the effects out.
import type { Effect } from './effects';
import type { EngineEvent } from './events';
import { onAggregationFailed, onCommitFailed, onEpochAudited, onRoundCommitted } from './commit';
import { armSweep, onHeartbeat, onLinkMeasured, onNodeLost, onNodeReady, onNodeRegistered, onSweep } from './nodes';
import { onAggregationDone, onRoundTimer, onUpdateArrived, onUpdateIngested, rejectUpdate } from './rounds';
import {
  onCheckpointResult,
  onEvaluationDone,
  onEvaluationFailed,
  onPause,
  onRecovered,
  onResume,
  onSessionCreated,
  onSessionCreateFailed,
  onSessionPersisted,
  onShutdown,
  onStart,
  onStop,
} from './session';
import { onKick } from './operator';
import type { EngineState } from './state';
import { Transition } from './transition';

export interface StepResult {
  state: EngineState;
  effects: Effect[];
}

export function step(state: EngineState, event: EngineEvent): StepResult {
  const t = new Transition(state, event.at);
  switch (event.type) {
    case 'node-registered':
      onNodeRegistered(t, event);
      break;
    case 'node-ready':
      onNodeReady(t, event);
      break;
    case 'heartbeat':
      onHeartbeat(t, event);
      break;
    case 'link-measured':
      onLinkMeasured(t, event);
      break;
    case 'node-lost':
      onNodeLost(t, event);
      break;
    case 'update-arrived':
      onUpdateArrived(t, event);
      break;
    case 'update-ingested':
      onUpdateIngested(t, event);
      break;
    case 'update-ingest-failed':
      rejectUpdate(t, event.nodeId, event.header, event.code, event.message);
      break;
    case 'booted':
      t.set({ nonceSeed: event.seed >>> 0 });
      armSweep(t);
      break;
    case 'timer-fired':
      if (event.timer === 'sweep') onSweep(t, event);
      else onRoundTimer(t, event);
      break;
    case 'aggregation-done':
      onAggregationDone(t, event);
      break;
    case 'aggregation-failed':
      onAggregationFailed(t, event);
      break;
    case 'round-committed':
      onRoundCommitted(t, event);
      break;
    case 'epoch-audited':
      onEpochAudited(t, event);
      break;
    case 'commit-failed':
      onCommitFailed(t, event);
      break;
    case 'start':
      onStart(t, event);
      break;
    case 'session-created':
      onSessionCreated(t, event);
      break;
    case 'session-create-failed':
      onSessionCreateFailed(t, event);
      break;
    case 'pause':
      onPause(t, event.requestId);
      break;
    case 'resume':
      onResume(t, event.requestId);
      break;
    case 'stop':
      onStop(t, event.requestId);
      break;
    case 'kick':
      onKick(t, event);
      break;
    case 'shutdown':
      onShutdown(t, event.requestId);
      break;
    case 'session-persisted':
    case 'session-persist-failed':
      onSessionPersisted(t, event);
      break;
    case 'evaluation-done':
      onEvaluationDone(t, event);
      break;
    case 'evaluation-failed':
      onEvaluationFailed(t, event);
      break;
    case 'checkpoint-written':
    case 'checkpoint-failed':
      onCheckpointResult(t, event);
      break;
    case 'recovered':
      onRecovered(t, event);
      break;
  }
  return { state: t.state, effects: t.effects };
}
