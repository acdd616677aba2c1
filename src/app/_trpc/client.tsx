'use client';
// tRPC client glue for the dashboard. Queries and mutations go over HTTP (batched) to /trpc on the same
// origin; subscriptions go over one WebSocket to /trpc-ws, which the custom server (src/server/main.ts)
// hands to tRPC's applyWSSHandler. The dashboard imports only the router *type* from the server.
import { useState, type ReactNode } from 'react';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { createTRPCClient, createWSClient, httpBatchLink, splitLink, wsLink, type TRPCClient } from '@trpc/client';
import { createTRPCContext } from '@trpc/tanstack-react-query';
import type { AppRouter } from '../../server/api/root';

export const { TRPCProvider, useTRPC, useTRPCClient } = createTRPCContext<AppRouter>();

/** Path of the tRPC WebSocket endpoint on the custom server. */
export const TRPC_WS_PATH = '/trpc-ws';
/** Path of the tRPC HTTP endpoint on the custom server. */
export const TRPC_HTTP_PATH = '/trpc';

function wsUrl(): string {
  const { protocol, host } = window.location;
  return `${protocol === 'https:' ? 'wss' : 'ws'}://${host}${TRPC_WS_PATH}`;
}

function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      // Live data arrives over the subscription; nothing here should refetch on its own.
      queries: { staleTime: Infinity, refetchOnWindowFocus: false, retry: 1 },
      mutations: { retry: false },
    },
  });
}

function makeBrowserClient(): TRPCClient<AppRouter> {
  const wsClient = createWSClient({
    url: wsUrl,
    // Reconnect quickly at first, then back off to at most 5 s.
    retryDelayMs: (attempt) => Math.min(500 * 2 ** attempt, 5000),
    // The server answers PING with PONG (applyWSSHandler does it unless told not to), so a dead
    // connection behind a proxy or a sleeping laptop is noticed within a few seconds.
    keepAlive: { enabled: true, intervalMs: 5000, pongTimeoutMs: 3000 },
  });
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        // No router type parameter here: wsLink<AppRouter> fails the build with TS2558.
        true: wsLink({ client: wsClient }),
        false: httpBatchLink({ url: TRPC_HTTP_PATH }),
      }),
    ],
  });
}

/**
 * During server rendering there is no window and no WebSocket; nothing runs a query or subscription
 * there either (subscriptions start in effects), so a plain HTTP client stands in.
 */
function makeServerClient(): TRPCClient<AppRouter> {
  return createTRPCClient<AppRouter>({ links: [httpBatchLink({ url: `http://127.0.0.1${TRPC_HTTP_PATH}` })] });
}

let browserQueryClient: QueryClient | undefined;
let browserTrpcClient: TRPCClient<AppRouter> | undefined;

export function TRPCReactProvider({ children }: { children: ReactNode }) {
  const [queryClient] = useState(() => {
    if (typeof window === 'undefined') return makeQueryClient();
    return (browserQueryClient ??= makeQueryClient());
  });
  const [trpcClient] = useState(() => {
    if (typeof window === 'undefined') return makeServerClient();
    // One WebSocket per page, even when React strict mode renders this component twice.
    return (browserTrpcClient ??= makeBrowserClient());
  });
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        {children}
      </TRPCProvider>
    </QueryClientProvider>
  );
}
