// Coded errors. Core code throws these with ids in the message; the tRPC error formatter, the REST facade and
// the agent gateway are the only places that translate them into transport-level errors.

export type ErrorCode =
  // agent channel: frames and control messages
  | 'FRAME_TRUNCATED'
  | 'FRAME_BAD_MAGIC'
  | 'FRAME_BAD_KIND'
  | 'FRAME_BAD_CODEC'
  | 'FRAME_BAD_HEADER'
  | 'FRAME_TOO_LARGE'
  | 'FRAME_SIZE_MISMATCH'
  // a compressed payload whose content is impossible (top-k indices out of range or not increasing, bad scales)
  | 'FRAME_BAD_PAYLOAD'
  | 'PROTOCOL_VERSION'
  | 'PARAM_COUNT'
  | 'CHECKSUM'
  | 'NON_FINITE'
  | 'BAD_MESSAGE'
  | 'NOT_REGISTERED'
  | 'NAME_TAKEN'
  | 'BANNED'
  // agent admission: a new name needs an operator-issued join token (unless the pool is opened)
  | 'JOIN_TOKEN_REQUIRED'
  | 'JOIN_TOKEN_INVALID'
  // node wallets: a hello whose signature does not prove the address, or a name bound to another wallet
  | 'WALLET_SIGNATURE_INVALID'
  | 'WALLET_MISMATCH'
  // update admission
  | 'UNKNOWN_SESSION'
  | 'STALE_ROUND'
  | 'FUTURE_ROUND'
  | 'NOT_ASSIGNED'
  | 'DUPLICATE'
  | 'STALE_ATTEMPT'
  | 'WRONG_NODE'
  | 'BAD_SAMPLE_COUNT'
  | 'STALE_MODEL'
  | 'ABSURD_NORM'
  | 'QUORUM_NOT_MET'
  // API
  | 'NOT_FOUND'
  | 'BAD_REQUEST'
  | 'CONFLICT'
  // API: the operator credential is missing (UNAUTHORIZED) or not valid (FORBIDDEN)
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  // storage: a stored row that does not hold what its writer checked (edited by hand, or a bug)
  | 'CORRUPT_RECORD';

export class HyperGpuError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Something an agent sent that does not follow the protocol. */
export class ProtocolError extends HyperGpuError {}

/** A well-formed update the round does not accept (stale, duplicate, not assigned...). */
export class AdmissionError extends HyperGpuError {}

/** Bad input or state on the operator side (API). */
export class RequestError extends HyperGpuError {}
