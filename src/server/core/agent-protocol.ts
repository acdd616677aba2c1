// The server's side of the agent channel: how the engine's effects reach one connected agent, and what the
// gateway hands validated traffic to. The wire format itself (messages, frames, close codes) lives in
// src/protocol, shared with the agent.
import type { FrameHeader } from '../../protocol/frame';
import type { CoordinatorMessage, NodeCapabilities } from '../../protocol/messages';
import type { WalletHello } from './rewards/wallet-verify';

export { AGENT_PROTOCOL_VERSION, CLOSE_CODES } from '../../protocol/messages';
export type { AgentMessage, CoordinatorMessage, SessionDescriptor } from '../../protocol/messages';

/** How the coordinator reaches one connected agent; the ws gateway implements it. */
export interface AgentLink {
  sendJson(message: CoordinatorMessage): void;
  sendBinary(bytes: Uint8Array): void;
  close(code: number, reason: string): void;
}

/**
 * What the gateway hands validated, decoded traffic to. `connection` is the gateway's id for one socket: a
 * node that reconnects speaks on a new one, and events of the old one are recognised as stale.
 */
export interface AgentChannelHandler {
  connected(connection: number, link: AgentLink): void;
  /**
   * Registers the connection as the node `name`; rejects with NAME_TAKEN for a name another agent owns, and
   * with JOIN_TOKEN_REQUIRED / JOIN_TOKEN_INVALID for a new name without a valid join token.
   */
  hello(connection: number, name: string, capabilities: NodeCapabilities, token?: string, joinToken?: string, wallet?: WalletHello): Promise<number>;
  ready(connection: number, nodeId: number, sessionId: number): void;
  /** Any message from a registered node; a heartbeat's measurements come with it. */
  heartbeat(connection: number, nodeId: number, report?: HeartbeatReport): void;
  /** The gateway measured the link: a ping's round trip (ms), or an update frame's upload rate (bytes/s). */
  linkMeasured?(connection: number, nodeId: number, measurement: { rttMs?: number; uploadBytesPerSecond?: number }): void;
  /** A binary frame; its header decoded at the edge, or the reason it could not be. */
  frame(connection: number, nodeId: number, bytes: Uint8Array, header: FrameHeader | null, error: { code: string; message: string } | null): void;
  closed(connection: number, nodeId: number | null, reason: string, left: boolean): void;
  protocolError(nodeId: number | null, message: string): void;
}

/** What an agent measured on itself and reports with its heartbeats. */
export interface HeartbeatReport {
  /** Time computing over wall time over its recent rounds (0-1). */
  computeShare: number;
}
