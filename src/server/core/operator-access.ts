// Who may operate the coordinator: the operator credential's port, what a caller presented, and the decision
// for a procedure's access level. Pure: reading headers is string work; hashing, comparing and storing secrets
// belong to the adapter that implements OperatorAuth (adapters/operator-auth.ts).
import { RequestError } from '../../protocol/errors';

/** Where to read about the credential; every refusal names it, so the message says what to do. */
export const SIGN_IN_HINT =
  'sign in at /sign-in or send Authorization: Bearer <admin token>; the token was printed when the server first started ' +
  '(see "Security" in README.md; lost it? restart with --reset-admin-token)';

/** The session cookie the sign-in sets (HttpOnly, SameSite=Strict, Path=/). */
export const SESSION_COOKIE = 'hypergpu_session';

/**
 * What a request presented: nothing, a credential that is not valid (a wrong token, an expired or signed-out
 * session), or a valid operator credential. A missing credential and a wrong one are refused differently
 * (401 and 403), so a script with a stale token is told its token is wrong, not that it sent none.
 */
export type Caller = { kind: 'anonymous' } | { kind: 'invalid'; why: string } | { kind: 'operator'; via: 'token' | 'session' };

export const ANONYMOUS: Caller = { kind: 'anonymous' };

/** The operator credential: the admin token and the browser sessions it opens. */
export interface OperatorAuth {
  /** True when `token` is the admin token (compared in constant time). */
  verifyToken(token: string): boolean;
  /** Opens a browser session: the session id for the cookie (only its hash is kept) and when it expires. */
  openSession(): { id: string; expiresAt: number; maxAgeSeconds: number };
  /** True while the session id is open and not expired. */
  sessionValid(id: string): boolean;
  closeSession(id: string): void;
}

/** What a request carries, before any secret is checked: a bearer token and/or a session cookie. */
export interface PresentedCredential {
  bearer: string | null;
  /** Authorization present but not `Bearer <token>`. */
  malformed: boolean;
  session: string | null;
}

export function readCredential(headers: { authorization?: string; cookie?: string }): PresentedCredential {
  const auth = headers.authorization;
  let bearer: string | null = null;
  let malformed = false;
  if (auth !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (match) bearer = match[1];
    else malformed = true;
  }
  return { bearer, malformed, session: readCookie(headers.cookie, SESSION_COOKIE) };
}

export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return value === '' ? null : value;
    }
  }
  return null;
}

/**
 * The caller a credential makes, checked now (a session may have ended since a WebSocket opened). A bearer token
 * wins over a cookie: a script that sends one means it.
 */
export function identify(presented: PresentedCredential, auth: OperatorAuth): Caller {
  if (presented.malformed) return { kind: 'invalid', why: 'the Authorization header is not "Bearer <admin token>"' };
  if (presented.bearer !== null) {
    return auth.verifyToken(presented.bearer) ? { kind: 'operator', via: 'token' } : { kind: 'invalid', why: 'the bearer token is not the admin token' };
  }
  if (presented.session !== null) {
    return auth.sessionValid(presented.session)
      ? { kind: 'operator', via: 'session' }
      : { kind: 'invalid', why: 'the sign-in session has expired or was signed out' };
  }
  return ANONYMOUS;
}

/**
 * Refuses a call the caller may not make: UNAUTHORIZED without a credential, FORBIDDEN with one that is not valid.
 * 'public' procedures are open unless the server keeps reads private.
 */
export function checkAccess(procedure: string, access: 'public' | 'operator', caller: Caller, privateReads: boolean): void {
  if (access === 'public' && !privateReads) return;
  if (caller.kind === 'operator') return;
  if (caller.kind === 'anonymous') throw new RequestError('UNAUTHORIZED', `${procedure} needs the operator credential: ${SIGN_IN_HINT}`);
  throw new RequestError('FORBIDDEN', `${procedure} refused: ${caller.why}; ${SIGN_IN_HINT}`);
}
