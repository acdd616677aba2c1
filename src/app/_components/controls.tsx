'use client';
// Start / Pause / Resume / Stop. They need the operator: signed out, every button is disabled and a link says
// how to sign in (the server refuses the mutations anyway). Each button is enabled only in the states where its mutation makes sense;
// the resulting state change arrives over the live subscription, not from the mutation's reply, so every
// open dashboard shows the same thing. Failures are shown until dismissed or the next action.
import { useState } from 'react';
import { useMutation } from '@tanstack/react-query';
import { useTRPC } from '../_trpc/client';
import { SIGN_IN_PATH, type OperatorState } from './use-operator';
import type { StatusSnapshot } from '../../server/core/events';
import type { ModelName, OptimizerName } from '../../server/core/types';

type State = StatusSnapshot['state'];
type Action = 'start' | 'pause' | 'resume' | 'stop';

const ENABLED_IN: Record<Action, readonly State[]> = {
  start: ['idle', 'stopped', 'completed', 'failed'],
  pause: ['running'],
  resume: ['paused'],
  stop: ['running', 'paused'],
};

export function canDo(action: Action, state: State | null): boolean {
  // Before the first snapshot nobody knows the state: everything waits.
  return state !== null && ENABLED_IN[action].includes(state);
}

export function Controls({ state, connected, operator, lastModel, lastOptimizer }: {
  state: State | null;
  connected: boolean;
  operator: OperatorState;
  lastModel: ModelName | null;
  lastOptimizer: OptimizerName | null;
}) {
  const trpc = useTRPC();
  const [error, setError] = useState<string | null>(null);
  const [model, setModel] = useState<ModelName | null>(null);
  const [optimizer, setOptimizer] = useState<OptimizerName | null>(null);
  const onError = (action: Action) => (err: unknown) =>
    setError(`${action} failed: ${err instanceof Error ? err.message : String(err)}`);
  const onMutate = () => setError(null);

  const start = useMutation(trpc.training.start.mutationOptions({ onError: onError('start'), onMutate }));
  const pause = useMutation(trpc.training.pause.mutationOptions({ onError: onError('pause'), onMutate }));
  const resume = useMutation(trpc.training.resume.mutationOptions({ onError: onError('resume'), onMutate }));
  const stop = useMutation(trpc.training.stop.mutationOptions({ onError: onError('stop'), onMutate }));
  const busy = start.isPending || pause.isPending || resume.isPending || stop.isPending;
  const enabled = (action: Action) => operator === 'signed-in' && connected && !busy && canDo(action, state);

  const chosenModel = model ?? lastModel ?? 'mlp';
  const chosenOptimizer = optimizer ?? lastOptimizer ?? 'adam';

  return (
    <div className="controls">
      <div className="control-row">
        {canDo('start', state) && (
          <div className="start-options" aria-label="Options for a new session">
            <label>
              <span>model</span>
              <select value={chosenModel} onChange={(e) => setModel(e.target.value as ModelName)} disabled={busy || operator !== 'signed-in'}>
                <option value="mlp">MLP</option>
                <option value="cnn">CNN</option>
              </select>
            </label>
            <label>
              <span>optimizer</span>
              <select value={chosenOptimizer} onChange={(e) => setOptimizer(e.target.value as OptimizerName)} disabled={busy || operator !== 'signed-in'}>
                <option value="adam">Adam</option>
                <option value="sgd">SGD</option>
              </select>
            </label>
          </div>
        )}
        <button
          type="button"
          className="btn btn-primary"
          data-testid="btn-start"
          disabled={!enabled('start')}
          onClick={() => start.mutate({ model: chosenModel, optimizer: chosenOptimizer })}
        >
          {start.isPending ? 'Starting…' : 'Start'}
        </button>
        <button type="button" className="btn" data-testid="btn-pause" disabled={!enabled('pause')} onClick={() => pause.mutate()}>
          {pause.isPending ? 'Pausing…' : 'Pause'}
        </button>
        <button type="button" className="btn" data-testid="btn-resume" disabled={!enabled('resume')} onClick={() => resume.mutate()}>
          {resume.isPending ? 'Resuming…' : 'Resume'}
        </button>
        <button type="button" className="btn btn-danger" data-testid="btn-stop" disabled={!enabled('stop')} onClick={() => stop.mutate()}>
          {stop.isPending ? 'Stopping…' : 'Stop'}
        </button>
        {operator === 'signed-out' && (
          <a className="link" href={SIGN_IN_PATH} data-testid="sign-in-to-operate">
            Sign in to operate
          </a>
        )}
      </div>
      {error && (
        <div className="control-error" role="alert" data-testid="control-error">
          <span>{error}</span>
          <button type="button" className="btn-link" onClick={() => setError(null)} aria-label="Dismiss">
            ×
          </button>
        </div>
      )}
    </div>
  );
}
