// The agent channel's use cases: the gateway hands over decoded traffic, this turns it into engine events.
// Registration is the one part with I/O of its own: a node name belongs to the agent that registered it
// first (it was issued a secret then) and must be claimed with that secret.
import { AdmissionError } from '../../protocol/errors';
import type { FrameHeader } from '../../protocol/frame';
import type { NodeCapabilities } from '../../protocol/messages';
import type { AgentChannelHandler, AgentLink, HeartbeatReport } from '../core/agent-protocol';
import type { Clock, Credentials, TrainingRepository } from '../core/ports';
import { isBanned } from '../core/engine/node-pool';
import type { Admission } from './join-tokens';
import type { Runner } from './runner';
import type { Wallets } from './wallets';
import type { WalletHello } from '../core/rewards/wallet-verify';

export class AgentChannel implements AgentChannelHandler {
  constructor(
    private readonly runner: Runner,
    private readonly repo: TrainingRepository,
    private readonly credentials: Credentials,
    private readonly clock: Clock,
    /** Who may register a new name; absent: anyone (unit tests, an engine driven without a gateway). */
    private readonly admission: Admission | null = null,
    /** Node wallets (challenge, signature, binding); absent: hellos carry no wallet and nobody is paid. */
    private readonly wallets: Wallets | null = null,
  ) {}

  /** Registrations in flight per name: a second hello for a name waits for the first to finish. */
  private readonly registering = new Map<string, Promise<unknown>>();

  connected(connection: number, link: AgentLink): void {
    this.runner.connectionOpened(connection, link);
    if (this.wallets) link.sendJson({ v: 1, type: 'challenge', challenge: this.wallets.challenge(connection) });
  }

  hello(connection: number, name: string, capabilities: NodeCapabilities, token?: string, joinToken?: string, wallet?: WalletHello): Promise<number> {
    // Serialized per name: of two concurrent hellos for a new name, the second reads the credential the first
    // wrote and must prove it owns the name (the conditional write in the repository is the second guard).
    const previous = this.registering.get(name) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(() => this.register(connection, name, capabilities, token, joinToken, wallet));
    this.registering.set(name, mine);
    const forget = () => {
      if (this.registering.get(name) === mine) this.registering.delete(name);
    };
    mine.then(forget, forget);
    return mine;
  }

  private async register(connection: number, name: string, capabilities: NodeCapabilities, token?: string, joinToken?: string, wallet?: WalletHello): Promise<number> {
    const credential = await this.repo.nodeCredential(name);
    if (credential?.tokenHash && (!token || this.credentials.hash(token) !== credential.tokenHash)) {
      throw new AdmissionError(
        'NAME_TAKEN',
        `node name ${name} belongs to another agent (${token ? 'wrong token' : 'no token presented'}): pick another --name, or run with the --state-dir that holds this name's token`,
      );
    }
    // A name without a secret (new, or pruned) is admitted only with a join token, unless the pool is open.
    if (!credential?.tokenHash && this.admission) await this.admission.admit(name, joinToken);
    const banned = credential ? isBanned(this.runner.state.pool, credential.id, this.clock.now()) : null;
    if (banned !== null) {
      throw new AdmissionError('BANNED', `node ${name} sent too many rejected updates and is refused until ${new Date(banned).toISOString()}; fix the agent, then reconnect after that`);
    }
    // Checked before anything is written: a refused wallet leaves no trace but the refusal.
    const checkedWallet = this.wallets ? await this.wallets.check(connection, name, wallet) : null;
    const nodeId = await this.repo.upsertNode(name, capabilities, this.clock.now());
    if (checkedWallet) await this.wallets!.bind(nodeId, name, checkedWallet);
    let issuedToken: string | null = null;
    if (!credential?.tokenHash) {
      issuedToken = this.credentials.issue();
      if (!(await this.repo.setNodeTokenHash(nodeId, this.credentials.hash(issuedToken)))) {
        throw new AdmissionError('NAME_TAKEN', `node name ${name} was claimed by another agent a moment ago: pick another --name`);
      }
    }
    this.runner.attach(nodeId, connection);
    this.runner.dispatch({ type: 'node-registered', at: this.clock.now(), nodeId, name, capabilities, connection, issuedToken });
    return nodeId;
  }

  ready(connection: number, nodeId: number, sessionId: number): void {
    this.runner.dispatch({ type: 'node-ready', at: this.clock.now(), nodeId, connection, sessionId });
  }

  heartbeat(connection: number, nodeId: number, report?: HeartbeatReport): void {
    this.runner.dispatch({ type: 'heartbeat', at: this.clock.now(), nodeId, connection, ...(report ? { computeShare: report.computeShare } : {}) });
  }

  linkMeasured(connection: number, nodeId: number, measurement: { rttMs?: number; uploadBytesPerSecond?: number }): void {
    this.runner.dispatch({ type: 'link-measured', at: this.clock.now(), nodeId, connection, ...measurement });
  }

  frame(connection: number, nodeId: number, bytes: Uint8Array, header: FrameHeader | null, error: { code: string; message: string } | null): void {
    this.runner.frameArrived(nodeId, connection, bytes, header, error);
  }

  closed(connection: number, nodeId: number | null, reason: string, left: boolean): void {
    this.wallets?.forget(connection);
    this.runner.connectionClosed(connection, nodeId);
    if (nodeId !== null) this.runner.dispatch({ type: 'node-lost', at: this.clock.now(), nodeId, connection, reason, left });
  }

  protocolError(nodeId: number | null, message: string): void {
    this.runner.log('warn', `${nodeId === null ? 'unregistered connection' : `node #${nodeId}`}: ${message}`);
  }
}
