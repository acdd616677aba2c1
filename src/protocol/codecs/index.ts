// Payload codecs of update frames, named by the frame header's codec byte (frame.ts). Each codec's payload
// length is checked against the header before a byte is decoded (payloadBytesFor), and decodeInto writes the
// values straight into the caller's slot (the aggregation slot at the coordinator): no intermediate array. What
// a slot then holds goes through the same checks as a float32 payload (checksum over the decoded values,
// NaN/Inf, norm), so a codec adds no way around them.
import { ProtocolError } from '../errors';
import { decodeFp16Into, encodeFp16, fp16PayloadBytes } from './fp16';
import { decodeInt8Into, encodeInt8, int8PayloadBytes } from './int8';
import { decodeTopKInto, encodeTopK, readTopK, topKCount, topKPayloadBytes } from './top-k';

export { ErrorFeedback } from './error-feedback';
export { FP16_MAX } from './fp16';
export { INT8_BLOCK } from './int8';
export { topKCount } from './top-k';

/** The header's codec byte. */
export enum FrameCodec {
  Float32 = 0,
  Float16 = 1,
  /** Blockwise int8 with a float32 scale per block. */
  Int8Block = 2,
  /** The k largest magnitudes as (u32 index, f32 value) pairs. */
  TopK = 3,
}

export type CodecName = 'float32' | 'fp16' | 'int8' | 'top-k';

export const CODEC_NAMES: Readonly<Record<FrameCodec, CodecName>> = {
  [FrameCodec.Float32]: 'float32',
  [FrameCodec.Float16]: 'fp16',
  [FrameCodec.Int8Block]: 'int8',
  [FrameCodec.TopK]: 'top-k',
};

export const CODEC_BY_NAME: Readonly<Record<CodecName, FrameCodec>> = {
  float32: FrameCodec.Float32,
  fp16: FrameCodec.Float16,
  int8: FrameCodec.Int8Block,
  'top-k': FrameCodec.TopK,
};

export function isFrameCodec(value: number): value is FrameCodec {
  return value === FrameCodec.Float32 || value === FrameCodec.Float16 || value === FrameCodec.Int8Block || value === FrameCodec.TopK;
}

/**
 * The payload length a codec must have for `paramCount` values. Top-k reads its k from the payload's first
 * word: a k above P, or a payload too short to say, is refused here. Throws coded errors (hostile input).
 */
export function expectedPayloadBytes(codec: FrameCodec, paramCount: number, payload: Uint8Array): number {
  switch (codec) {
    case FrameCodec.Float32:
      return paramCount * 4;
    case FrameCodec.Float16:
      return fp16PayloadBytes(paramCount);
    case FrameCodec.Int8Block:
      return int8PayloadBytes(paramCount);
    case FrameCodec.TopK: {
      const k = readTopK(payload);
      if (k === null) throw new ProtocolError('FRAME_TRUNCATED', `top-k payload has ${payload.byteLength} bytes, too few to hold k`);
      if (k > paramCount) throw new ProtocolError('FRAME_BAD_PAYLOAD', `top-k frame keeps k = ${k} of ${paramCount} parameters; k must not exceed P`);
      return topKPayloadBytes(k);
    }
  }
}

/** Decodes a payload of `codec` straight into `dst` (dst.length = P). Coded errors on bad content. */
export function decodeInto(codec: FrameCodec, payload: Uint8Array, dst: Float32Array): void {
  switch (codec) {
    case FrameCodec.Float32: {
      if (payload.byteLength !== dst.length * 4) {
        throw new ProtocolError('FRAME_SIZE_MISMATCH', `float32 payload of ${payload.byteLength} bytes for ${dst.length} parameters`);
      }
      new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength).set(payload);
      return;
    }
    case FrameCodec.Float16:
      return decodeFp16Into(payload, dst);
    case FrameCodec.Int8Block:
      return decodeInt8Into(payload, dst);
    case FrameCodec.TopK:
      return decodeTopKInto(payload, dst);
  }
}

export interface EncodeOptions {
  /** top-k: the share of values kept (default 1%). */
  topKFraction?: number;
  /** top-k: magnitudes scratch of at least P values, reused across updates. */
  scratch?: Float32Array;
}

/** Payload bytes `codec` needs for P values (top-k: for the k the options give). */
export function payloadBytes(codec: FrameCodec, paramCount: number, options: EncodeOptions = {}): number {
  switch (codec) {
    case FrameCodec.Float32:
      return paramCount * 4;
    case FrameCodec.Float16:
      return fp16PayloadBytes(paramCount);
    case FrameCodec.Int8Block:
      return int8PayloadBytes(paramCount);
    case FrameCodec.TopK:
      return topKPayloadBytes(topKCount(paramCount, options.topKFraction ?? DEFAULT_TOP_K_FRACTION));
  }
}

export const DEFAULT_TOP_K_FRACTION = 0.01;

/** Encodes `values` into `out` (payloadBytes(codec, P, options) bytes). */
export function encodeInto(codec: FrameCodec, values: Float32Array, out: Uint8Array, options: EncodeOptions = {}): void {
  switch (codec) {
    case FrameCodec.Float32:
      new Float32Array(out.buffer, out.byteOffset, values.length).set(values);
      return;
    case FrameCodec.Float16:
      return encodeFp16(values, out);
    case FrameCodec.Int8Block:
      return encodeInt8(values, out);
    case FrameCodec.TopK:
      return encodeTopK(values, topKCount(values.length, options.topKFraction ?? DEFAULT_TOP_K_FRACTION), out, options.scratch);
  }
}
