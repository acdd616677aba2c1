// The error table is the only translation of coded errors: every code has an HTTP status, a tRPC code and a
// WebSocket close code, and the three agree with what tRPC and the agent channel actually use.
import { readFileSync } from 'node:fs';
import { TRPCError } from '@trpc/server';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/protocol/errors';
import { CLOSE_CODES } from '../../src/protocol/messages';
import { closeCodeFor, ERROR_TABLE, httpStatusFor, translateError, trpcCodeFor } from '../../src/server/core/error-table';

// Every ErrorCode, spelled out: the Record type makes this list fail to compile when a code is added or removed.
const ALL_ERROR_CODES: Record<ErrorCode, true> = {
  FRAME_TRUNCATED: true,
  FRAME_BAD_MAGIC: true,
  FRAME_BAD_KIND: true,
  FRAME_BAD_CODEC: true,
  FRAME_BAD_HEADER: true,
  FRAME_TOO_LARGE: true,
  FRAME_SIZE_MISMATCH: true,
  FRAME_BAD_PAYLOAD: true,
  PROTOCOL_VERSION: true,
  PARAM_COUNT: true,
  CHECKSUM: true,
  NON_FINITE: true,
  BAD_MESSAGE: true,
  NOT_REGISTERED: true,
  NAME_TAKEN: true,
  BANNED: true,
  JOIN_TOKEN_REQUIRED: true,
  JOIN_TOKEN_INVALID: true,
  WALLET_SIGNATURE_INVALID: true,
  WALLET_MISMATCH: true,
  STALE_ATTEMPT: true,
  CORRUPT_RECORD: true,
  UNKNOWN_SESSION: true,
  STALE_ROUND: true,
  FUTURE_ROUND: true,
  NOT_ASSIGNED: true,
  DUPLICATE: true,
  WRONG_NODE: true,
  BAD_SAMPLE_COUNT: true,
  STALE_MODEL: true,
  ABSURD_NORM: true,
  QUORUM_NOT_MET: true,
  NOT_FOUND: true,
  BAD_REQUEST: true,
  CONFLICT: true,
  UNAUTHORIZED: true,
  FORBIDDEN: true,
};

const closeCodes: number[] = Object.values(CLOSE_CODES);

describe('error table', () => {
  it('has a row for every ErrorCode', () => {
    for (const code of Object.keys(ALL_ERROR_CODES)) expect(Object.hasOwn(ERROR_TABLE, code), code).toBe(true);
  });

  it('gives every code an error status, a tRPC code whose own status is that status, and a close code', () => {
    for (const [code, row] of Object.entries(ERROR_TABLE)) {
      expect(row.http, code).toBeGreaterThanOrEqual(400);
      expect(row.http, code).toBeLessThan(600);
      // tRPC answers this tRPC code with this HTTP status: REST and tRPC over HTTP agree on every error.
      expect(getHTTPStatusCodeFromError(new TRPCError({ code: row.trpc })), code).toBe(row.http);
      // Application close codes come from the protocol's CLOSE_CODES; 1011 is the standard internal-error code.
      expect([...closeCodes, 1011], code).toContain(row.close);
      expect(httpStatusFor(code)).toBe(row.http);
      expect(trpcCodeFor(code)).toBe(row.trpc);
      expect(closeCodeFor(code)).toBe(row.close);
    }
  });

  it('closes with protocolError by default, nameTaken for NAME_TAKEN and flood for a peer that sends too fast', () => {
    expect(closeCodeFor('BAD_MESSAGE')).toBe(CLOSE_CODES.protocolError);
    expect(closeCodeFor('FRAME_BAD_MAGIC')).toBe(CLOSE_CODES.protocolError);
    expect(closeCodeFor('NAME_TAKEN')).toBe(CLOSE_CODES.nameTaken);
    expect(closeCodeFor('RATE_LIMITED')).toBe(CLOSE_CODES.flood);
    expect(closeCodeFor('JOIN_TOKEN_REQUIRED')).toBe(CLOSE_CODES.unauthorized);
    expect(closeCodeFor('JOIN_TOKEN_INVALID')).toBe(CLOSE_CODES.unauthorized);
    expect(closeCodeFor('SLOW_READER')).toBe(CLOSE_CODES.slowReader);
    expect(closeCodeFor('HELLO_TIMEOUT')).toBe(CLOSE_CODES.helloTimeout);
  });

  it('keeps the statuses the API always had for its own codes', () => {
    expect(translateError('NOT_FOUND')).toMatchObject({ http: 404, trpc: 'NOT_FOUND' });
    expect(translateError('CONFLICT')).toMatchObject({ http: 409, trpc: 'CONFLICT' });
    expect(translateError('BAD_REQUEST')).toMatchObject({ http: 400, trpc: 'BAD_REQUEST' });
    expect(translateError('METHOD_NOT_ALLOWED').http).toBe(405);
    expect(translateError('PAYLOAD_TOO_LARGE').http).toBe(413);
  });

  it('tells a missing operator credential (401) from a wrong one (403), and a POST that is not JSON (415)', () => {
    expect(translateError('UNAUTHORIZED')).toMatchObject({ http: 401, trpc: 'UNAUTHORIZED' });
    expect(translateError('FORBIDDEN')).toMatchObject({ http: 403, trpc: 'FORBIDDEN' });
    expect(translateError('UNSUPPORTED_MEDIA_TYPE')).toMatchObject({ http: 415, trpc: 'UNSUPPORTED_MEDIA_TYPE' });
    expect(translateError('HOST_NOT_ALLOWED').http).toBe(403);
    expect(translateError('ORIGIN_NOT_ALLOWED').http).toBe(403);
  });

  it('reads a code it does not know as an internal error', () => {
    expect(translateError('SOMETHING_NEW')).toEqual(ERROR_TABLE.INTERNAL);
    expect(translateError('toString')).toEqual(ERROR_TABLE.INTERNAL);
    expect(httpStatusFor('SOMETHING_NEW')).toBe(500);
  });

  it('is pure data that imports nothing but the error codes', () => {
    const source = readFileSync(new URL('../../src/server/core/error-table.ts', import.meta.url), 'utf8');
    const imports = [...source.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
    expect(imports).toEqual(['../../protocol/errors']);
  });
});
