// The one translation of coded errors into transport terms: for each code, the HTTP status (REST facade),
// the tRPC error code (tRPC over HTTP and WebSocket) and the WebSocket close code (agent gateway, when it
// decides to close). Pure data: every translator reads this table and none keeps its own mapping, so a code
// means the same thing on every transport.
import type { ErrorCode } from '../../protocol/errors';

/**
 * Codes that belong to a transport rather than to the domain: the REST facade's own refusals, a bug on our side,
 * and a peer that sends too fast. They are not in ErrorCode (src/protocol/errors.ts) because no domain code
 * throws them; they live here so that the table covers every code a client can see.
 */
export type TransportErrorCode =
  | 'METHOD_NOT_ALLOWED'
  | 'PAYLOAD_TOO_LARGE'
  | 'RATE_LIMITED'
  | 'INTERNAL'
  // request guards (api/request-guard.ts): a POST that is not JSON, a Host or Origin this server does not answer to
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'HOST_NOT_ALLOWED'
  | 'ORIGIN_NOT_ALLOWED'
  // agent gateway: a peer that does not read what it is sent, or never says hello
  | 'SLOW_READER'
  | 'HELLO_TIMEOUT';

export type TranslatedCode = ErrorCode | TransportErrorCode;

/** The tRPC error codes the table uses (a subset of @trpc/server's TRPC_ERROR_CODE_KEY; api/trpc.ts checks that). */
export type TrpcErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'TIMEOUT'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'METHOD_NOT_SUPPORTED'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'UNPROCESSABLE_CONTENT'
  | 'TOO_MANY_REQUESTS'
  | 'INTERNAL_SERVER_ERROR';

/**
 * WebSocket close codes, the values of CLOSE_CODES in src/protocol/messages.ts (a unit test checks they agree;
 * this module imports nothing but the error codes). 1011 is the standard "internal error" close code.
 */
const CLOSE = { protocolError: 4002, nameTaken: 4006, flood: 4008, banned: 4009, unauthorized: 4010, slowReader: 4011, helloTimeout: 4012, walletRefused: 4013, internalError: 1011 } as const;
export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];

export interface ErrorTranslation {
  http: number;
  trpc: TrpcErrorCode;
  close: CloseCode;
}

// The HTTP status of each row is the one tRPC itself gives its tRPC code (a unit test checks), so a REST
// client and a tRPC-over-HTTP client see the same status for the same error.
const badRequest: ErrorTranslation = { http: 400, trpc: 'BAD_REQUEST', close: CLOSE.protocolError };
const forbidden: ErrorTranslation = { http: 403, trpc: 'FORBIDDEN', close: CLOSE.protocolError };
const notFound: ErrorTranslation = { http: 404, trpc: 'NOT_FOUND', close: CLOSE.protocolError };
const conflict: ErrorTranslation = { http: 409, trpc: 'CONFLICT', close: CLOSE.protocolError };
const tooLarge: ErrorTranslation = { http: 413, trpc: 'PAYLOAD_TOO_LARGE', close: CLOSE.protocolError };
/** Well-formed, but its content is refused (a bad sample count, an absurd norm, NaNs). */
const unprocessable: ErrorTranslation = { http: 422, trpc: 'UNPROCESSABLE_CONTENT', close: CLOSE.protocolError };

export const ERROR_TABLE: Readonly<Record<TranslatedCode, ErrorTranslation>> = {
  // agent channel: frames and control messages that break the protocol
  FRAME_TRUNCATED: badRequest,
  FRAME_BAD_MAGIC: badRequest,
  FRAME_BAD_KIND: badRequest,
  FRAME_BAD_CODEC: badRequest,
  FRAME_BAD_HEADER: badRequest,
  FRAME_TOO_LARGE: tooLarge,
  FRAME_SIZE_MISMATCH: badRequest,
  FRAME_BAD_PAYLOAD: badRequest,
  PROTOCOL_VERSION: badRequest,
  PARAM_COUNT: badRequest,
  CHECKSUM: badRequest,
  NON_FINITE: unprocessable,
  BAD_MESSAGE: badRequest,
  NOT_REGISTERED: badRequest,
  NAME_TAKEN: { http: 409, trpc: 'CONFLICT', close: CLOSE.nameTaken },
  BANNED: { http: 403, trpc: 'FORBIDDEN', close: CLOSE.banned },
  JOIN_TOKEN_REQUIRED: { http: 401, trpc: 'UNAUTHORIZED', close: CLOSE.unauthorized },
  JOIN_TOKEN_INVALID: { http: 403, trpc: 'FORBIDDEN', close: CLOSE.unauthorized },
  WALLET_SIGNATURE_INVALID: { http: 403, trpc: 'FORBIDDEN', close: CLOSE.walletRefused },
  WALLET_MISMATCH: { http: 409, trpc: 'CONFLICT', close: CLOSE.walletRefused },
  // update admission: the update was well-formed, the round does not take it
  UNKNOWN_SESSION: notFound,
  STALE_ROUND: conflict,
  FUTURE_ROUND: conflict,
  NOT_ASSIGNED: forbidden,
  DUPLICATE: conflict,
  STALE_ATTEMPT: conflict,
  WRONG_NODE: forbidden,
  BAD_SAMPLE_COUNT: unprocessable,
  STALE_MODEL: conflict,
  ABSURD_NORM: unprocessable,
  QUORUM_NOT_MET: conflict,
  // API
  NOT_FOUND: notFound,
  BAD_REQUEST: badRequest,
  CONFLICT: conflict,
  UNAUTHORIZED: { http: 401, trpc: 'UNAUTHORIZED', close: CLOSE.protocolError },
  FORBIDDEN: forbidden,
  // storage: a row that cannot be read back is our problem, not the caller's
  CORRUPT_RECORD: { http: 500, trpc: 'INTERNAL_SERVER_ERROR', close: CLOSE.internalError },
  // transport
  METHOD_NOT_ALLOWED: { http: 405, trpc: 'METHOD_NOT_SUPPORTED', close: CLOSE.protocolError },
  PAYLOAD_TOO_LARGE: tooLarge,
  RATE_LIMITED: { http: 429, trpc: 'TOO_MANY_REQUESTS', close: CLOSE.flood },
  SLOW_READER: { http: 429, trpc: 'TOO_MANY_REQUESTS', close: CLOSE.slowReader },
  HELLO_TIMEOUT: { http: 408, trpc: 'TIMEOUT', close: CLOSE.helloTimeout },
  INTERNAL: { http: 500, trpc: 'INTERNAL_SERVER_ERROR', close: CLOSE.internalError },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, trpc: 'UNSUPPORTED_MEDIA_TYPE', close: CLOSE.protocolError },
  // 403 rather than 421: tRPC has no 421 code, and the table keeps one status per tRPC code.
  HOST_NOT_ALLOWED: forbidden,
  ORIGIN_NOT_ALLOWED: forbidden,
};

/** The translation of a code; a code the table does not know (a newer peer's) reads as an internal error. */
export function translateError(code: string): ErrorTranslation {
  return Object.hasOwn(ERROR_TABLE, code) ? ERROR_TABLE[code as TranslatedCode] : ERROR_TABLE.INTERNAL;
}

export function httpStatusFor(code: string): number {
  return translateError(code).http;
}

export function trpcCodeFor(code: string): TrpcErrorCode {
  return translateError(code).trpc;
}

/** The close code the agent gateway uses when an error of this code ends the connection. */
export function closeCodeFor(code: string): CloseCode {
  return translateError(code).close;
}
