'use client';
// The dashboard's one data source: the live.dashboard subscription over WebSocket. The first message is a
// snapshot, the rest are events; both go through the reducer. No polling: on a dropped connection the
// WebSocket client reconnects and resubscribes, and the server starts again with a fresh snapshot.
import { useEffect, useReducer, useRef, useState } from 'react';
import { useSubscription } from '@trpc/tanstack-react-query';
import { useTRPC } from '../_trpc/client';
import { initialLiveState, liveReducer, type LiveState } from './live-state';

export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'error';

export interface LiveDashboard {
  state: LiveState;
  connection: ConnectionState;
  connectionError: string | null;
}

/** After a subscription error (not a dropped socket, which reconnects by itself), try again after this. */
const RETRY_AFTER_ERROR_MS = 2000;

export function useLiveDashboard(): LiveDashboard {
  const trpc = useTRPC();
  const [state, dispatch] = useReducer(liveReducer, initialLiveState);
  const subscription = useSubscription(
    trpc.live.dashboard.subscriptionOptions(undefined, {
      onData: (message) => dispatch({ type: 'message', message, receivedAt: Date.now() }),
    }),
  );
  const { status, error, reset } = subscription;

  const [everConnected, setEverConnected] = useState(false);
  useEffect(() => {
    if (status === 'pending' && state.ready) setEverConnected(true);
  }, [status, state.ready]);

  const resetRef = useRef(reset);
  resetRef.current = reset;
  useEffect(() => {
    if (status !== 'error') return;
    const timer = setTimeout(() => resetRef.current(), RETRY_AFTER_ERROR_MS);
    return () => clearTimeout(timer);
  }, [status]);

  let connection: ConnectionState;
  if (status === 'pending' && state.ready) connection = 'connected';
  else if (status === 'error') connection = 'error';
  else connection = everConnected ? 'reconnecting' : 'connecting';

  return { state, connection, connectionError: error ? error.message : null };
}

/** The current time, refreshed every `intervalMs` (for "ago" labels only). */
export function useNow(intervalMs = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}
