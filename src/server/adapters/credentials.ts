import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { Credentials } from '../core/ports';

/** 256-bit random node secrets; only their sha256 is stored. */
export const cryptoCredentials: Credentials = {
  issue: () => randomBytes(32).toString('base64url'),
  hash: (token) => createHash('sha256').update(token, 'utf8').digest('hex'),
  seed: () => randomInt(0, 2 ** 32 - 1),
};
