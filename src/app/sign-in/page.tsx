'use client';
// Operator sign-in: the admin token (printed by the server the first time it started) is posted as JSON to
// /api/auth/sign-in, which answers with an HttpOnly, SameSite=Strict session cookie. The token never stays in
// the page: the field is cleared, and nothing is stored in localStorage.
import { useEffect, useRef, useState, type FormEvent } from 'react';

export default function SignInPage() {
  // Uncontrolled: what was typed before React hydrated stays in the field and is what gets sent (a controlled
  // field's state would still be '' then, and the first submit would say the field is empty).
  const tokenField = useRef<HTMLInputElement>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // Until React runs, a submit would be the browser's own: a GET of this page with the token in the URL (and in
  // history and logs). The button stays disabled until then; the field has no name and the form posts anyway.
  const [hydrated, setHydrated] = useState(false);
  useEffect(() => setHydrated(true), []);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    const token = tokenField.current?.value ?? '';
    if (token.trim() === '') {
      setError('Paste the admin token first.');
      return;
    }
    setBusy(true);
    try {
      const res = await fetch('/api/auth/sign-in', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: token.trim() }),
      });
      if (res.ok) {
        // A full load: the dashboard's connections start again with the new cookie.
        window.location.assign('/');
        return;
      }
      const body = (await res.json().catch(() => null)) as { error?: { code?: string; message?: string } } | null;
      setError(
        res.status === 403
          ? 'That is not the admin token. Use the token the server printed when it first started, or restart it with --reset-admin-token for a new one.'
          : (body?.error?.message ?? `Sign-in failed (HTTP ${res.status}).`),
      );
    } catch (err) {
      setError(`Could not reach the coordinator: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      if (tokenField.current) tokenField.current.value = '';
      setBusy(false);
    }
  };

  return (
    <div className="page sign-in-page">
      <form className="panel sign-in" method="post" onSubmit={submit} data-testid="sign-in-form">
        <h1>Sign in to operate HyperGPU</h1>
        <p className="muted">
          Starting, pausing, resuming and stopping training need the <b>admin token</b>. The server printed it on its
          terminal the first time it started (or it is the <code>HYPERGPU_ADMIN_TOKEN</code> it was started with).
          Lost it? Restart the server with <code>--reset-admin-token</code>.
        </p>
        <label>
          <span>Admin token</span>
          <input
            type="password"
            autoComplete="current-password"
            autoFocus
            ref={tokenField}
            defaultValue=""
            disabled={busy}
            data-testid="sign-in-token"
          />
        </label>
        {error && (
          <div className="control-error" role="alert" data-testid="sign-in-error">
            <span>{error}</span>
          </div>
        )}
        <div className="sign-in-actions">
          <button type="submit" className="btn btn-primary" disabled={busy || !hydrated} data-testid="sign-in-submit">
            {busy ? 'Signing in…' : 'Sign in'}
          </button>
          <a href="/" className="link">
            Back to the dashboard (read only)
          </a>
        </div>
      </form>
    </div>
  );
}
