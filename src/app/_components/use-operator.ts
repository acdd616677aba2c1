'use client';
// Whether this browser is signed in as the operator. The session cookie is HttpOnly (page scripts cannot read
// it), so the page asks the server: GET /api/auth/session. Sign-in itself is the /sign-in page.
import { useCallback, useEffect, useState } from 'react';

export type OperatorState = 'unknown' | 'signed-in' | 'signed-out';

export const SIGN_IN_PATH = '/sign-in';

export function useOperator(): { operator: OperatorState; signOut: () => Promise<void> } {
  const [operator, setOperator] = useState<OperatorState>('unknown');

  useEffect(() => {
    let cancelled = false;
    fetch('/api/auth/session', { cache: 'no-store' })
      .then((res) => (res.ok ? (res.json() as Promise<{ signedIn: boolean }>) : { signedIn: false }))
      .then((body) => !cancelled && setOperator(body.signedIn ? 'signed-in' : 'signed-out'))
      .catch(() => !cancelled && setOperator('signed-out'));
    return () => {
      cancelled = true;
    };
  }, []);

  const signOut = useCallback(async () => {
    await fetch('/api/auth/sign-out', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }).catch(() => undefined);
    setOperator('signed-out');
  }, []);

  return { operator, signOut };
}
