// The server's side of the agent channel: how the engine's effects reach one connected agent. The wire
// format itself (messages, frames, close codes) lives in src/protocol, shared with the agent.
import type { CoordinatorMessage } from '../../protocol/messages';

export { AGENT_PROTOCOL_VERSION, CLOSE_CODES } from '../../protocol/messages';
export type { AgentMessage, CoordinatorMessage, SessionDescriptor } from '../../protocol/messages';

/** How the coordinator reaches one connected agent; the ws gateway implements it. */
export interface AgentLink {
  sendJson(message: CoordinatorMessage): void;
  sendBinary(bytes: Uint8Array): void;
  close(code: number, reason: string): void;
}

/** What the gateway hands validated traffic to. */
export interface AgentChannelHandler {
  registerNode(name: string, capabilities: import('../../protocol/messages').NodeCapabilities, link: AgentLink, token?: string): Promise<number>;
  markReady(nodeId: number, sessionId: number): void;
  heartbeat(nodeId: number): void;
  disconnect(nodeId: number, link: AgentLink, reason: string, left?: boolean): void;
  receiveFrame(nodeId: number, bytes: Uint8Array): void;
  reportProtocolError(nodeId: number | null, message: string): void;
}
