// Everything the coordinator sends is checked here before the agent acts on it: text frames against the
// protocol's zod schema, binary frames by the frame codec (magic, version, size, checksum), and only model
// frames are expected. Pure and total: any input gives a typed message or a reason, never an exception.
import { HyperGpuError } from '../protocol/errors';
import { decodeFrame, FRAME_HEADER_BYTES, FrameKind, MAX_FRAME_PARAMS, PROTOCOL_VERSION, type FrameHeader } from '../protocol/frame';
import { coordinatorMessageSchema, parseMessage, type CoordinatorMessage } from '../protocol/messages';

/** Control messages are small (the largest, a welcome, is well under 10 KB); refuse to parse megabytes of JSON. */
export const MAX_CONTROL_TEXT_BYTES = 64 * 1024;
/** The largest frame the codec accepts; the socket refuses bigger messages before buffering them. */
export const MAX_INBOUND_FRAME_BYTES = FRAME_HEADER_BYTES + MAX_FRAME_PARAMS * 4;

export interface ModelFrame {
  header: FrameHeader;
  /** The parameters, in memory the agent owns (not a view over the socket's receive buffer). */
  values: Float32Array;
}

export type Inbound =
  | { ok: true; kind: 'control'; message: CoordinatorMessage }
  | { ok: true; kind: 'model'; frame: ModelFrame }
  | {
      ok: false;
      reason: string;
      /** The coordinator speaks another protocol version: drop the link and start over, do not go on. */
      reconnect: boolean;
    };

export function readInbound(data: Uint8Array, isBinary: boolean): Inbound {
  return isBinary ? readModelFrame(data) : readControl(data);
}

function readControl(data: Uint8Array): Inbound {
  if (data.byteLength > MAX_CONTROL_TEXT_BYTES) {
    return { ok: false, reconnect: false, reason: `control message of ${data.byteLength} bytes, over the ${MAX_CONTROL_TEXT_BYTES}-byte limit` };
  }
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  const parsed = parseMessage(coordinatorMessageSchema, text);
  if (parsed.ok) return { ok: true, kind: 'control', message: parsed.message };
  return { ok: false, reconnect: parsed.code === 'PROTOCOL_VERSION', reason: `invalid control message (${parsed.code}): ${parsed.reason}` };
}

function readModelFrame(data: Uint8Array): Inbound {
  let decoded;
  try {
    decoded = decodeFrame(data);
  } catch (error) {
    if (error instanceof HyperGpuError && error.code === 'PROTOCOL_VERSION') {
      const version = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint16(4, true);
      return { ok: false, reconnect: true, reason: `model frame uses protocol version ${version}, this agent speaks ${PROTOCOL_VERSION}: upgrade the older one` };
    }
    const code = error instanceof HyperGpuError ? `${error.code}: ` : '';
    return { ok: false, reconnect: false, reason: `bad model frame: ${code}${error instanceof Error ? error.message : String(error)}` };
  }
  const { header, payload } = decoded;
  if (header.kind !== FrameKind.Model) {
    return { ok: false, reconnect: false, reason: `expected a model frame from the coordinator, got a ${FrameKind[header.kind]} frame` };
  }
  // A view over ws's receive buffer must be copied: training outlives it. An unaligned frame was copied once already.
  const values = payload.buffer === data.buffer ? payload.slice() : payload;
  return { ok: true, kind: 'model', frame: { header, values } };
}
