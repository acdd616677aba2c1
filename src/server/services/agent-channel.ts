// The agent channel's use cases: the gateway hands over decoded traffic, this turns it into engine events.
// Registration is the one part with I/O of its own: a node name belongs to the agent that registered it
// first (it was issued a secret then) and must be claimed with that secret.
import { AdmissionError } from '../../protocol/errors';
import type { FrameHeader } from '../../protocol/frame';
import type { NodeCapabilities } from '../../protocol/messages';
import type { AgentChannelHandler, AgentLink } from '../core/agent-protocol';
import type { Clock, Credentials, TrainingRepository } from '../core/ports';
import { isBanned } from '../core/engine/node-pool';
import type { Runner } from './runner';

export class AgentChannel implements AgentChannelHandler {
  constructor(
    private readonly runner: Runner,
    private readonly repo: TrainingRepository,
    private readonly credentials: Credentials,
    private readonly clock: Clock,
  ) {}

  connected(connection: number, link: AgentLink): void {
    this.runner.connectionOpened(connection, link);
  }

  async hello(connection: number, name: string, capabilities: NodeCapabilities, token?: string): Promise<number> {
    const credential = await this.repo.nodeCredential(name);
    if (credential?.tokenHash && (!token || this.credentials.hash(token) !== credential.tokenHash)) {
      throw new AdmissionError(
        'NAME_TAKEN',
        `node name ${name} belongs to another agent (${token ? 'wrong token' : 'no token presented'}): pick another --name, or run with the --state-dir that holds this name's token`,
      );
    }
    const banned = credential ? isBanned(this.runner.state.pool, credential.id, this.clock.now()) : null;
    if (banned !== null) {
      throw new AdmissionError('BANNED', `node ${name} sent too many rejected updates and is refused until ${new Date(banned).toISOString()}; fix the agent, then reconnect after that`);
    }
    const nodeId = await this.repo.upsertNode(name, capabilities, this.clock.now());
    let issuedToken: string | null = null;
    if (!credential?.tokenHash) {
      issuedToken = this.credentials.issue();
      await this.repo.setNodeTokenHash(nodeId, this.credentials.hash(issuedToken));
    }
    this.runner.attach(nodeId, connection);
    this.runner.dispatch({ type: 'node-registered', at: this.clock.now(), nodeId, name, capabilities, connection, issuedToken });
    return nodeId;
  }

  ready(connection: number, nodeId: number, sessionId: number): void {
    this.runner.dispatch({ type: 'node-ready', at: this.clock.now(), nodeId, connection, sessionId });
  }

  heartbeat(connection: number, nodeId: number): void {
    this.runner.dispatch({ type: 'heartbeat', at: this.clock.now(), nodeId, connection });
  }

  frame(connection: number, nodeId: number, bytes: Uint8Array, header: FrameHeader | null, error: { code: string; message: string } | null): void {
    this.runner.frameArrived(nodeId, connection, bytes, header, error);
  }

  closed(connection: number, nodeId: number | null, reason: string, left: boolean): void {
    this.runner.connectionClosed(connection, nodeId);
    if (nodeId !== null) this.runner.dispatch({ type: 'node-lost', at: this.clock.now(), nodeId, connection, reason, left });
  }

  protocolError(nodeId: number | null, message: string): void {
    this.runner.log('warn', `${nodeId === null ? 'unregistered connection' : `node #${nodeId}`}: ${message}`);
  }
}
