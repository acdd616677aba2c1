// Browser sign-in: the dashboard's /sign-in page posts the admin token here as JSON and gets a session cookie
// (HttpOnly: scripts on the page cannot read it; SameSite=Strict: other sites' pages cannot send it; Path=/).
//   POST /api/auth/sign-in   {"token": "..."}  -> 200 {signedIn, expiresAt} + Set-Cookie; 403 for a wrong token
//   POST /api/auth/sign-out                    -> 200 {signedIn: false}, the session closed and the cookie cleared
//   GET  /api/auth/session                     -> 200 {signedIn, via, privateReads}
//   GET  /api/auth/siwe/nonce                  -> 200 {nonce, owner, chainId} (404 without a chain)
//   POST /api/auth/siwe   {"message", "signature"} -> as sign-in, for the contract owner's wallet (EIP-4361)
// Request guards (JSON-only POSTs, Host and Origin) run before this, in runtime.ts.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { identify, readCredential, SESSION_COOKIE, SIGN_IN_HINT, type OperatorAuth } from '../core/operator-access';
import { readJsonBody, RestError, send, sendError } from './rest';
import { checkSiweSignIn } from '../core/rewards/siwe';

export const AUTH_PATHS = ['/api/auth/sign-in', '/api/auth/sign-out', '/api/auth/session', '/api/auth/siwe/nonce', '/api/auth/siwe'] as const;

const siweBody = z.object({ message: z.string().min(1).max(4096), signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/) }).strict();
/** Sign-in nonces outstanding at most (each lives 5 minutes and is used once): asking for more drops the oldest. */
const MAX_NONCES = 1000;

const signInBody = z.object({ token: z.string().min(1, 'token is empty').max(1024) }).strict();

/** Failed sign-ins accepted per minute, all callers together: guessing an admin token gets nowhere fast. */
const MAX_FAILURES_PER_MINUTE = 20;

export interface AuthRoutes {
  /** Serves /api/auth/*; returns false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

export function createAuthRoutes(
  auth: OperatorAuth,
  options: { privateReads: boolean; now?: () => number; siwe?: { owner: string; chainId: number } | null },
): AuthRoutes {
  const now = options.now ?? Date.now;
  const failures: number[] = [];
  const nonces = new Map<string, number>();

  const cookie = (req: IncomingMessage, value: string, maxAgeSeconds: number) => {
    // Secure only when this server itself speaks TLS; behind a TLS proxy the browser still keeps it to that origin.
    const secure = (req.socket as { encrypted?: boolean }).encrypted ? '; Secure' : '';
    return `${SESSION_COOKIE}=${value}; Max-Age=${maxAgeSeconds}; Path=/; HttpOnly; SameSite=Strict${secure}`;
  };

  return {
    async handle(req, res) {
      const path = new URL(req.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '');
      if (!(AUTH_PATHS as readonly string[]).includes(path)) return false;
      try {
        const method = req.method === 'HEAD' ? 'GET' : req.method;
        const expected = path === '/api/auth/session' || path === '/api/auth/siwe/nonce' ? 'GET' : 'POST';
        if (method !== expected) {
          res.setHeader('Allow', expected === 'GET' ? 'GET, HEAD' : 'POST');
          throw new RestError('METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${path}; use ${expected}`);
        }
        if (path === '/api/auth/siwe/nonce' || path === '/api/auth/siwe') {
          const siwe = options.siwe;
          if (!siwe) throw new RestError('NOT_FOUND', 'this coordinator settles on no chain: sign in with the admin token');
          const at = now();
          for (const [nonce, expires] of nonces) if (expires < at) nonces.delete(nonce);
          if (path === '/api/auth/siwe/nonce') {
            if (nonces.size >= MAX_NONCES) nonces.delete(nonces.keys().next().value!);
            // Web Crypto (a global in Node 20): 122 random bits, alphanumeric as EIP-4361 wants.
            const nonce = crypto.randomUUID().replace(/-/g, '');
            nonces.set(nonce, at + 5 * 60_000);
            send(res, 200, { nonce, owner: siwe.owner, chainId: siwe.chainId }, req.method === 'HEAD');
            return true;
          }
          if (failures.length >= MAX_FAILURES_PER_MINUTE) throw new RestError('RATE_LIMITED', 'too many failed sign-ins in the last minute; wait a minute and try again');
          const parsed = siweBody.safeParse(await readJsonBody(req));
          if (!parsed.success) throw new RestError('BAD_REQUEST', `invalid body: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}; send {"message", "signature"}`);
          const result = await checkSiweSignIn({
            ...parsed.data,
            owner: siwe.owner,
            chainId: siwe.chainId,
            domain: req.headers.host ?? '',
            // Used once: deleted as it is checked, whatever the outcome.
            nonceIssued: (nonce) => nonces.delete(nonce),
            now: at,
          });
          if (!result.ok) {
            failures.push(at);
            throw new RestError('FORBIDDEN', `wallet sign-in refused: ${result.reason}`);
          }
          const session = auth.openSession();
          send(res, 200, { signedIn: true, expiresAt: session.expiresAt, address: result.address }, false, { 'set-cookie': cookie(req, session.id, session.maxAgeSeconds) });
          return true;
        }
        if (path === '/api/auth/session') {
          const caller = identify(readCredential(req.headers), auth);
          send(res, 200, { signedIn: caller.kind === 'operator', via: caller.kind === 'operator' ? caller.via : null, privateReads: options.privateReads }, req.method === 'HEAD');
        } else if (path === '/api/auth/sign-out') {
          const presented = readCredential(req.headers);
          if (presented.session) auth.closeSession(presented.session);
          send(res, 200, { signedIn: false }, false, { 'set-cookie': cookie(req, '', 0) });
        } else {
          const at = now();
          while (failures.length && at - failures[0] > 60_000) failures.shift();
          if (failures.length >= MAX_FAILURES_PER_MINUTE) throw new RestError('RATE_LIMITED', 'too many failed sign-ins in the last minute; wait a minute and try again');
          const parsed = signInBody.safeParse(await readJsonBody(req));
          if (!parsed.success) throw new RestError('BAD_REQUEST', `invalid body: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}; send {"token": "<admin token>"}`);
          if (!auth.verifyToken(parsed.data.token)) {
            failures.push(at);
            throw new RestError('FORBIDDEN', `that is not the admin token; ${SIGN_IN_HINT}`);
          }
          const session = auth.openSession();
          send(res, 200, { signedIn: true, expiresAt: session.expiresAt }, false, { 'set-cookie': cookie(req, session.id, session.maxAgeSeconds) });
        }
      } catch (error) {
        sendError(res, error);
      }
      return true;
    },
  };
}
