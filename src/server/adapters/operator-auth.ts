// The operator credential: the admin token (from HYPERGPU_ADMIN_TOKEN, or generated at first start) and the
// browser sessions a sign-in opens. Only hashes are kept: the token's sha256 in <data dir>/admin-token.sha256
// (mode 0600), each session id's sha256 in memory. A restart keeps the token and signs browsers out.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { OperatorAuth } from '../core/operator-access';

export const ADMIN_TOKEN_FILE = 'admin-token.sha256';
/** A browser session lasts a working day; sign in again after. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
/** Open sessions kept at most; past it the oldest is dropped (a sign-in loop cannot grow memory). */
const MAX_SESSIONS = 1000;
/** An admin token from the environment must be at least this long: it is the only lock on the coordinator. */
export const MIN_ENV_TOKEN_LENGTH = 16;

export interface OperatorAuthOptions {
  dataDir: string;
  /** HYPERGPU_ADMIN_TOKEN: when set, it is the token, and the file is neither read nor written. */
  envToken?: string;
  /** --reset-admin-token: replace the stored token with a new one. */
  reset?: boolean;
  now?: () => number;
}

export interface OperatorAuthHandle extends OperatorAuth {
  /** Where the token came from this start. */
  source: 'env' | 'file' | 'created';
  /** The token itself, only when this start created it (to print once); null otherwise. */
  createdToken: string | null;
  tokenFile: string;
}

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

export function createOperatorAuth(options: OperatorAuthOptions): OperatorAuthHandle {
  const now = options.now ?? Date.now;
  const tokenFile = path.join(options.dataDir, ADMIN_TOKEN_FILE);
  let tokenHash: Buffer;
  let source: OperatorAuthHandle['source'];
  let createdToken: string | null = null;
  if (options.envToken !== undefined) {
    if (options.envToken.length < MIN_ENV_TOKEN_LENGTH) {
      throw new Error(`HYPERGPU_ADMIN_TOKEN is shorter than ${MIN_ENV_TOKEN_LENGTH} characters; use a long random string (openssl rand -hex 32)`);
    }
    tokenHash = sha256(options.envToken);
    source = 'env';
  } else if (!options.reset && existsSync(tokenFile)) {
    const hex = readFileSync(tokenFile, 'utf8').trim();
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new Error(`${tokenFile} does not hold a sha256 hash; delete it or start with --reset-admin-token`);
    tokenHash = Buffer.from(hex, 'hex');
    source = 'file';
  } else {
    createdToken = `hgpu_${randomBytes(32).toString('base64url')}`;
    tokenHash = sha256(createdToken);
    // Written to a temporary file with mode 0600, then renamed: the hash is never readable by others, and a
    // crash leaves the old file or the new one, never half of one.
    const temp = `${tokenFile}.tmp`;
    writeFileSync(temp, `${tokenHash.toString('hex')}\n`, { mode: 0o600 });
    chmodSync(temp, 0o600);
    renameSync(temp, tokenFile);
    source = 'created';
  }

  /** sha256(session id) hex -> expiry (epoch ms). A Map keeps insertion order: the first entry is the oldest. */
  const sessions = new Map<string, number>();
  const sessionKey = (id: string) => sha256(id).toString('hex');

  return {
    source,
    createdToken,
    tokenFile,
    verifyToken(token) {
      // Both sides hashed to 32 bytes: timingSafeEqual needs equal lengths, and the time says nothing about the token.
      return timingSafeEqual(sha256(token), tokenHash);
    },
    openSession() {
      const at = now();
      for (const [key, expiresAt] of sessions) if (expiresAt <= at) sessions.delete(key);
      while (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
      const id = randomBytes(32).toString('base64url');
      const expiresAt = at + SESSION_TTL_MS;
      sessions.set(sessionKey(id), expiresAt);
      return { id, expiresAt, maxAgeSeconds: Math.floor(SESSION_TTL_MS / 1000) };
    },
    sessionValid(id) {
      // The map lookup is by hash: the time it takes says nothing about the ids it holds.
      const key = sessionKey(id);
      const expiresAt = sessions.get(key);
      if (expiresAt === undefined) return false;
      if (expiresAt <= now()) {
        sessions.delete(key);
        return false;
      }
      return true;
    },
    closeSession(id) {
      sessions.delete(sessionKey(id));
    },
  };
}
