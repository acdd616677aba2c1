'use client';
// Loading, empty and error states the console pages share: the same box size whatever the state, so a page
// does not jump when its data arrives.
import type { ReactNode } from 'react';

export function Loading({ what, testId }: { what: string; testId?: string }) {
  return (
    <div className="console-state" data-testid={testId ?? 'loading'}>
      Loading {what}…
    </div>
  );
}

export function Empty({ children, testId }: { children: ReactNode; testId?: string }) {
  return (
    <div className="console-state" data-testid={testId ?? 'empty'}>
      {children}
    </div>
  );
}

export function Failed({ error, testId }: { error: unknown; testId?: string }) {
  return (
    <div className="console-state console-error" role="alert" data-testid={testId ?? 'error'}>
      {error instanceof Error ? error.message : String(error)}
    </div>
  );
}

/** The field-by-field reasons of a BAD_REQUEST from tRPC (the server's zod issues, see api/trpc.ts). */
export function fieldIssues(error: unknown): Record<string, string> {
  const issues = (error as { data?: { issues?: { path: string; message: string }[] | null } } | null)?.data?.issues ?? [];
  const out: Record<string, string> = {};
  for (const issue of issues) out[issue.path.split('.')[0] || 'form'] ??= issue.message;
  return out;
}

export function StateBadge({ state }: { state: string }) {
  return (
    <span className={`state-badge state-${state}`} data-testid="session-state" data-state={state}>
      {state}
    </span>
  );
}
