// Binary frames for tensors on the agent channel. Control messages are small JSON text frames
// (see messages.ts); anything with parameters in it travels here, never as JSON.
//
// Layout (little-endian), 64-byte header then float32 payload:
//   0  u32  magic 'HGPU' (0x55504748 read as LE u32 of the bytes 48 47 50 55)
//   4  u16  protocol version
//   6  u8   kind (FrameKind)
//   7  u8   payload codec (FrameCodec in codecs/index.ts: 0 float32, 1 fp16, 2 blockwise int8, 3 top-k; model frames
//           are float32 only). The payload's length is checked per codec before it is decoded; the checksum is
//           over the payload as decoded (float32 words), so every codec gets the same checks at the coordinator.
//   8  u32  session id
//  12  u32  round
//  16  u32  node id
//  20  u32  attempt
//  24  u32  model version the payload was computed against (update) or is (model)
//  28  u32  sample count (updates: samples behind the gradient; model frames: 0)
//  32  u32  parameter count
//  36  u32  checksum of the payload bytes (checksum32 below)
//  40  f32  mean training loss over those samples (updates; NaN for model frames)
//  44  u32  header length (64); lets a later version grow the header without breaking old decoders
//  48..63   reserved, zero
// The payload starts at byte 64, so it stays 4-byte aligned whenever the frame itself is.

import { decodeInto, encodeInto, expectedPayloadBytes, FrameCodec, isFrameCodec, payloadBytes, type EncodeOptions, type ErrorFeedback } from './codecs';
import { ProtocolError } from './errors';

export { FrameCodec };

export const FRAME_MAGIC = 0x55504748;
export const PROTOCOL_VERSION = 1;
export const FRAME_HEADER_BYTES = 64;
/** Upper bound on parameters in one frame: 64M floats (256 MiB) is far beyond any model we ship. */
export const MAX_FRAME_PARAMS = 64 * 1024 * 1024;

export enum FrameKind {
  /** Mean gradient over sampleCount samples. */
  Gradient = 1,
  /** Pseudo-gradient (start weights minus weights after local steps). */
  PseudoGradient = 2,
  /** Full model parameters, coordinator to agent. */
  Model = 3,
}

export interface FrameHeader {
  version: number;
  kind: FrameKind;
  codec: FrameCodec;
  sessionId: number;
  round: number;
  nodeId: number;
  attempt: number;
  modelVersion: number;
  sampleCount: number;
  paramCount: number;
  checksum: number;
  trainLoss: number;
}

export interface DecodedFrame {
  header: FrameHeader;
  /** A view over the received bytes when they are 4-byte aligned, else one copy. */
  payload: Float32Array;
}

const CHECKSUM_SEEDS = [0x811c9dc5 | 0, 0x01000193 | 0, 0x9e3779b9 | 0, 0x85ebca6b | 0] as const;
const FNV_PRIME = 0x01000193;

/**
 * A 32-bit checksum over the payload's 32-bit words: four independent multiply-xor lanes (word i goes to lane
 * i % 4, the last n % 4 words to lane 0) so the CPU is not serialised on one multiply chain and a SIMD kernel
 * (src/workers/kernels/inspect.wat) computes the very same lanes; folded at the end. It detects corruption and
 * truncation; it is not a MAC.
 */
export function checksum32(words: Uint32Array): number {
  let [a, b, c, d] = CHECKSUM_SEEDS as unknown as number[];
  const n = words.length;
  // Two words per lane per iteration: the same lanes in the same order (so the same value), but V8 then keeps
  // the four chains in registers and overlaps them; measured 2x faster than one word per lane at 1M words.
  const n8 = n - (n % 8);
  let i = 0;
  for (; i < n8; i += 8) {
    a = Math.imul(a ^ words[i], FNV_PRIME);
    b = Math.imul(b ^ words[i + 1], FNV_PRIME);
    c = Math.imul(c ^ words[i + 2], FNV_PRIME);
    d = Math.imul(d ^ words[i + 3], FNV_PRIME);
    a = Math.imul(a ^ words[i + 4], FNV_PRIME);
    b = Math.imul(b ^ words[i + 5], FNV_PRIME);
    c = Math.imul(c ^ words[i + 6], FNV_PRIME);
    d = Math.imul(d ^ words[i + 7], FNV_PRIME);
  }
  if (n - i >= 4) {
    a = Math.imul(a ^ words[i], FNV_PRIME);
    b = Math.imul(b ^ words[i + 1], FNV_PRIME);
    c = Math.imul(c ^ words[i + 2], FNV_PRIME);
    d = Math.imul(d ^ words[i + 3], FNV_PRIME);
    i += 4;
  }
  for (; i < n; i++) a = Math.imul(a ^ words[i], FNV_PRIME);
  return foldChecksum(a, b, c, d, n);
}

/** Folds the four lanes in full (each step is a bijection of the running value, so a change in any lane shows). */
export function foldChecksum(a: number, b: number, c: number, d: number, n: number): number {
  let h = Math.imul(a ^ (a >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ b ^ (h >>> 13), 0xc2b2ae35);
  h = Math.imul(h ^ c ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ d ^ (h >>> 13), 0xc2b2ae35);
  h ^= n;
  h ^= h >>> 16;
  return h >>> 0;
}

/** What one read pass over an update's values tells: its checksum, how many are NaN/Inf, its squared norm. */
export interface PayloadStats {
  checksum: number;
  nonFinite: number;
  sumSquares: number;
}

/** Inspects values in place; the aggregator's SIMD kernel is the fast one, this is the portable one. */
export type PayloadInspector = (values: Float32Array) => PayloadStats;

/** The three checks in one JavaScript pass (the reference for the SIMD kernel, and its fallback). */
export const inspectPayload: PayloadInspector = (values) => {
  const words = wordsOf(values);
  let [a, b, c, d] = CHECKSUM_SEEDS as unknown as number[];
  let bad = 0;
  let sumSquares = 0;
  const n = words.length;
  const n4 = n - (n % 4);
  let i = 0;
  for (; i < n4; i += 4) {
    const w0 = words[i];
    const w1 = words[i + 1];
    const w2 = words[i + 2];
    const w3 = words[i + 3];
    a = Math.imul(a ^ w0, FNV_PRIME);
    b = Math.imul(b ^ w1, FNV_PRIME);
    c = Math.imul(c ^ w2, FNV_PRIME);
    d = Math.imul(d ^ w3, FNV_PRIME);
    if ((w0 & 0x7f800000) === 0x7f800000) bad++;
    if ((w1 & 0x7f800000) === 0x7f800000) bad++;
    if ((w2 & 0x7f800000) === 0x7f800000) bad++;
    if ((w3 & 0x7f800000) === 0x7f800000) bad++;
    const v0 = values[i];
    const v1 = values[i + 1];
    const v2 = values[i + 2];
    const v3 = values[i + 3];
    sumSquares += v0 * v0 + v1 * v1 + v2 * v2 + v3 * v3;
  }
  for (; i < n; i++) {
    a = Math.imul(a ^ words[i], FNV_PRIME);
    if ((words[i] & 0x7f800000) === 0x7f800000) bad++;
    sumSquares += values[i] * values[i];
  }
  return { checksum: foldChecksum(a, b, c, d, n), nonFinite: bad, sumSquares };
};

/** Counts NaN and +-Inf entries by their exponent bits (cheaper than Number.isFinite on each float). */
export function countNonFinite(words: Uint32Array): number {
  let bad = 0;
  for (let i = 0; i < words.length; i++) {
    if ((words[i] & 0x7f800000) === 0x7f800000) bad++;
  }
  return bad;
}

function wordsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

export type FrameFields = Omit<FrameHeader, 'version' | 'checksum' | 'paramCount' | 'codec'>;

/** Encodes a frame into one fresh buffer: header and payload copied once, ready for ws.send. */
export function encodeFrame(fields: FrameFields, payload: Float32Array): Uint8Array {
  const { bytes, body } = frameBuffer(payload.length);
  body.set(payload);
  return sealFrame(bytes, fields);
}

/** An outgoing frame's memory: `body` is a view over the payload part of `bytes`. */
export interface FrameBuffer {
  bytes: Uint8Array;
  body: Float32Array;
}

/**
 * Allocates a whole frame (zeroed header and payload) in one buffer, so a producer can write the payload in
 * place (the agent accumulates its gradient straight into `body`) and sealFrame then finishes the header:
 * no intermediate array, no copy into the frame. The buffer starts at offset 0, so the body is 4-byte aligned.
 */
export function allocateFrame(paramCount: number): FrameBuffer {
  if (!Number.isInteger(paramCount) || paramCount < 0 || paramCount > MAX_FRAME_PARAMS) {
    throw new RangeError(`a frame holds 0 to ${MAX_FRAME_PARAMS} parameters, not ${paramCount}`);
  }
  return frameBuffer(paramCount);
}

function frameBuffer(paramCount: number): FrameBuffer {
  const buffer = new ArrayBuffer(FRAME_HEADER_BYTES + paramCount * 4);
  return { bytes: new Uint8Array(buffer), body: new Float32Array(buffer, FRAME_HEADER_BYTES, paramCount) };
}

/**
 * Writes the header of a frame whose payload is already in place (from allocateFrame): the parameter count
 * follows from the length, the checksum is computed over the body as it is now. Returns `bytes`, ready for
 * ws.send; the result decodes exactly like encodeFrame(fields, body).
 * `checksum`: checksum32 of the body when the caller already has it (the coordinator computes its model's where
 * the values lie, in a SIMD kernel's memory); it must be exactly that, or every receiver refuses the frame.
 */
export function sealFrame(bytes: Uint8Array, fields: FrameFields, checksum?: number): Uint8Array {
  const payloadBytes = bytes.byteLength - FRAME_HEADER_BYTES;
  if (payloadBytes < 0 || payloadBytes % 4 !== 0 || bytes.byteOffset % 4 !== 0) {
    throw new RangeError(`sealFrame needs a 4-byte aligned frame of ${FRAME_HEADER_BYTES} + 4n bytes (got ${bytes.byteLength} at offset ${bytes.byteOffset}); use allocateFrame`);
  }
  const paramCount = payloadBytes / 4;
  writeHeader(bytes, fields, paramCount, checksum ?? checksum32(new Uint32Array(bytes.buffer, bytes.byteOffset + FRAME_HEADER_BYTES, paramCount)), FrameCodec.Float32);
  return bytes;
}

export interface CodedFrameOptions extends EncodeOptions {
  /** Error feedback: the residual is added to `values` first, and what the codec dropped becomes the next residual. */
  feedback?: ErrorFeedback;
  /** P floats the decoded values are written to (reused across updates); allocated when absent. */
  decoded?: Float32Array;
}

/**
 * Encodes an update with a codec into one fresh frame. `values` is modified in place when error feedback is
 * given (it becomes the compensated update). The checksum covers the values as the coordinator will decode
 * them, which the encoder computes anyway to know what the codec dropped.
 */
export function encodeCodedFrame(fields: FrameFields, values: Float32Array, codec: FrameCodec, options: CodedFrameOptions = {}): Uint8Array {
  if (codec === FrameCodec.Float32) {
    // Lossless: nothing to feed back (and a residual from an earlier lossy codec is sent now, once).
    if (options.feedback) {
      options.feedback.compensate(values);
      options.feedback.reset();
    }
    return encodeFrame(fields, values);
  }
  const size = payloadBytes(codec, values.length, options);
  const bytes = new Uint8Array(FRAME_HEADER_BYTES + size);
  const payload = bytes.subarray(FRAME_HEADER_BYTES);
  options.feedback?.compensate(values);
  encodeInto(codec, values, payload, options);
  const decoded = options.decoded ?? new Float32Array(values.length);
  decodeInto(codec, payload, decoded);
  options.feedback?.record(values, decoded);
  writeHeader(bytes, fields, values.length, checksum32(wordsOf(decoded)), codec);
  return bytes;
}

function writeHeader(bytes: Uint8Array, f: FrameFields, paramCount: number, checksum: number, codec: FrameCodec): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, FRAME_HEADER_BYTES);
  // Reserved bytes are zero even when a caller seals a buffer it wrote before.
  bytes.fill(0, 48, FRAME_HEADER_BYTES);
  v.setUint32(0, FRAME_MAGIC, true);
  v.setUint16(4, PROTOCOL_VERSION, true);
  v.setUint8(6, f.kind);
  v.setUint8(7, codec);
  v.setUint32(8, f.sessionId, true);
  v.setUint32(12, f.round, true);
  v.setUint32(16, f.nodeId, true);
  v.setUint32(20, f.attempt, true);
  v.setUint32(24, f.modelVersion, true);
  v.setUint32(28, f.sampleCount, true);
  v.setUint32(32, paramCount, true);
  v.setUint32(36, checksum, true);
  v.setFloat32(40, f.trainLoss, true);
  v.setUint32(44, FRAME_HEADER_BYTES, true);
}

/** Reads and validates the header only; throws ProtocolError with a reason an agent can act on. */
export function decodeHeader(bytes: Uint8Array): FrameHeader {
  if (bytes.byteLength < FRAME_HEADER_BYTES) {
    throw new ProtocolError('FRAME_TRUNCATED', `frame has ${bytes.byteLength} bytes, the header alone needs ${FRAME_HEADER_BYTES}`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, FRAME_HEADER_BYTES);
  const magic = v.getUint32(0, true);
  if (magic !== FRAME_MAGIC) {
    throw new ProtocolError('FRAME_BAD_MAGIC', `frame does not start with HGPU magic (got 0x${magic.toString(16)})`);
  }
  const version = v.getUint16(4, true);
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError('PROTOCOL_VERSION', `frame uses protocol version ${version}; this coordinator speaks ${PROTOCOL_VERSION}: upgrade the agent`);
  }
  const kind = v.getUint8(6);
  if (kind !== FrameKind.Gradient && kind !== FrameKind.PseudoGradient && kind !== FrameKind.Model) {
    throw new ProtocolError('FRAME_BAD_KIND', `unknown frame kind ${kind}`);
  }
  const codec = v.getUint8(7);
  if (!isFrameCodec(codec)) {
    throw new ProtocolError('FRAME_BAD_CODEC', `unknown payload codec ${codec}; this coordinator decodes float32, fp16, int8 and top-k (codecs 0-3): upgrade the coordinator or run the agent with another codec`);
  }
  if (kind === FrameKind.Model && codec !== FrameCodec.Float32) {
    throw new ProtocolError('FRAME_BAD_CODEC', `model frames are float32 (codec 0), not codec ${codec}`);
  }
  const headerBytes = v.getUint32(44, true);
  if (headerBytes !== FRAME_HEADER_BYTES) {
    throw new ProtocolError('FRAME_BAD_HEADER', `header length ${headerBytes}, expected ${FRAME_HEADER_BYTES}`);
  }
  const paramCount = v.getUint32(32, true);
  if (paramCount > MAX_FRAME_PARAMS) {
    throw new ProtocolError('FRAME_TOO_LARGE', `frame declares ${paramCount} parameters, the limit is ${MAX_FRAME_PARAMS}`);
  }
  // Each codec's length follows from P (top-k: from its k, itself checked against P), and is checked here, before
  // any payload byte is decoded.
  const expected = FRAME_HEADER_BYTES + expectedPayloadBytes(codec, paramCount, bytes.subarray(FRAME_HEADER_BYTES));
  if (bytes.byteLength !== expected) {
    throw new ProtocolError(
      bytes.byteLength < expected ? 'FRAME_TRUNCATED' : 'FRAME_SIZE_MISMATCH',
      `frame declares ${paramCount} parameters (${expected} bytes as codec ${codec}) but has ${bytes.byteLength} bytes`,
    );
  }
  return {
    version,
    kind,
    codec,
    sessionId: v.getUint32(8, true),
    round: v.getUint32(12, true),
    nodeId: v.getUint32(16, true),
    attempt: v.getUint32(20, true),
    modelVersion: v.getUint32(24, true),
    sampleCount: v.getUint32(28, true),
    paramCount,
    checksum: v.getUint32(36, true),
    trainLoss: v.getFloat32(40, true),
  };
}

/**
 * Decodes a whole frame. The payload is a zero-copy view when the bytes are 4-byte aligned; otherwise it is
 * copied once (ws hands out slices of its receive buffer at any offset). Verifies the checksum and rejects
 * non-finite values, so nothing downstream has to look at the bytes again.
 */
export function decodeFrame(bytes: Uint8Array): DecodedFrame {
  const header = decodeHeader(bytes);
  const offset = bytes.byteOffset + FRAME_HEADER_BYTES;
  let payload: Float32Array;
  if (header.codec !== FrameCodec.Float32) {
    payload = new Float32Array(header.paramCount);
    decodeInto(header.codec, bytes.subarray(FRAME_HEADER_BYTES), payload);
  } else if (offset % 4 === 0) {
    payload = new Float32Array(bytes.buffer, offset, header.paramCount);
  } else {
    payload = new Float32Array(header.paramCount);
    new Uint8Array(payload.buffer).set(bytes.subarray(FRAME_HEADER_BYTES));
  }
  verifyPayload(header, payload);
  return { header, payload };
}

/**
 * Copies a frame's payload into memory the caller owns (an aggregator slot), then inspects it there in one
 * pass: one copy from the socket buffer into the memory the aggregation kernel reads, one read to check it.
 * Returns the header and the payload's stats (the caller checks the norm against its own limit).
 */
export function decodeFrameInto(
  bytes: Uint8Array,
  target: Float32Array,
  inspect: PayloadInspector = inspectPayload,
  /** The header when the caller already decoded it (to admit the update before copying it). */
  header: FrameHeader = decodeHeader(bytes),
): { header: FrameHeader; stats: PayloadStats } {
  if (target.length !== header.paramCount) {
    throw new ProtocolError('PARAM_COUNT', `frame has ${header.paramCount} parameters, the model has ${target.length}`);
  }
  // float32: one copy; other codecs: decoded in place, the same number of writes into the slot.
  if (header.codec === FrameCodec.Float32) new Uint8Array(target.buffer, target.byteOffset, target.byteLength).set(bytes.subarray(FRAME_HEADER_BYTES));
  else decodeInto(header.codec, bytes.subarray(FRAME_HEADER_BYTES), target);
  const stats = inspect(target);
  checkStats(header, stats);
  return { header, stats };
}

function verifyPayload(header: FrameHeader, payload: Float32Array): void {
  if (header.kind === FrameKind.Model) {
    // Model frames (coordinator to agent) carry no NaN by construction; the checksum is all they need.
    const sum = checksum32(wordsOf(payload));
    if (sum !== header.checksum) throw checksumError(sum, header.checksum);
    return;
  }
  checkStats(header, inspectPayload(payload));
}

/** The verdict on an update's checksum and NaN/Inf count from one inspection pass (the norm is the engine's). */
export function checkStats(header: FrameHeader, stats: PayloadStats): void {
  if (stats.checksum !== header.checksum) throw checksumError(stats.checksum, header.checksum);
  if (header.kind !== FrameKind.Model && stats.nonFinite > 0) {
    throw new ProtocolError('NON_FINITE', `update has ${stats.nonFinite} NaN or infinite values; it was not applied`);
  }
}

function checksumError(actual: number, declared: number): ProtocolError {
  return new ProtocolError('CHECKSUM', `payload checksum 0x${actual.toString(16)} does not match header 0x${declared.toString(16)}`);
}
