// Control messages on the agent channel: small JSON text frames, versioned. Tensors never travel here
// (see frame-codec.ts). The gateway validates every incoming message against these shapes before the
// coordinator sees it.
import type { Assignment, ModelName, NodeCapabilities } from './types';

export const AGENT_PROTOCOL_VERSION = 1;

/** Agent -> coordinator. */
export type AgentMessage =
  | { v: 1; type: 'hello'; name: string; capabilities: NodeCapabilities; token?: string }
  | { v: 1; type: 'heartbeat'; at: number; round: number | null }
  | { v: 1; type: 'ready'; sessionId: number }
  | { v: 1; type: 'goodbye'; reason: string };

export interface SessionDescriptor {
  sessionId: number;
  model: ModelName;
  dataset: string;
  seed: number;
  paramCount: number;
}

/** Coordinator -> agent. */
export type CoordinatorMessage =
  /** `token` is sent once, at a name's first registration: the agent keeps it and presents it from then on. */
  | { v: 1; type: 'welcome'; nodeId: number; heartbeatMs: number; session: SessionDescriptor | null; token?: string }
  | { v: 1; type: 'session'; session: SessionDescriptor | null }
  | { v: 1; type: 'assignment'; assignment: Assignment }
  | { v: 1; type: 'cancel'; round: number; reason: string }
  | { v: 1; type: 'accepted'; round: number; samples: number }
  | { v: 1; type: 'rejected'; round: number; code: string; reason: string }
  | { v: 1; type: 'error'; code: string; message: string };

/** WebSocket close codes the coordinator uses (4000-4999 is the application range). */
export const CLOSE_CODES = {
  protocolError: 4002,
  replaced: 4003,
  nameTaken: 4006,
  heartbeatTimeout: 4004,
  shuttingDown: 4005,
  flood: 4008,
} as const;

/** How the coordinator reaches one connected agent; the ws gateway implements it. */
export interface AgentLink {
  sendJson(message: CoordinatorMessage): void;
  sendBinary(bytes: Uint8Array): void;
  close(code: number, reason: string): void;
}

/** What the gateway hands validated traffic to (the coordinator implements it). */
export interface AgentChannelHandler {
  registerNode(name: string, capabilities: NodeCapabilities, link: AgentLink, token?: string): Promise<number>;
  markReady(nodeId: number, sessionId: number): void;
  heartbeat(nodeId: number): void;
  disconnect(nodeId: number, link: AgentLink, reason: string, left?: boolean): void;
  receiveFrame(nodeId: number, bytes: Uint8Array): void;
  reportProtocolError(nodeId: number | null, message: string): void;
}
