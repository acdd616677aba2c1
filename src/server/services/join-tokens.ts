// Agent admission: operator-issued join tokens (for the whole pool, or bound to one node name), revocable,
// optionally expiring, stored as the sha256 of their secret. A hello for a name that holds no node secret
// yet must present one, unless the operator opened the pool. A returning node proves its name with its own
// node secret (agent-channel.ts) and needs no join token again.
import { AdmissionError, RequestError } from '../../protocol/errors';
import type { Clock, Credentials, JoinTokenRecord, TrainingRepository } from '../core/ports';

export interface IssueJoinTokenInput {
  label?: string;
  /** Bind the token to one node name; absent: any name may join with it. */
  nodeName?: string | null;
  /** Seconds until it expires; absent: it never does (revoke it instead). */
  expiresInSeconds?: number | null;
}

/** What the agent channel asks before it gives a new name a node secret. */
export interface Admission {
  /** Resolves when `name` may register; rejects with a coded AdmissionError otherwise. */
  admit(name: string, joinToken: string | undefined): Promise<void>;
}

export class JoinTokens implements Admission {
  constructor(
    private readonly repo: TrainingRepository,
    private readonly credentials: Credentials,
    private readonly clock: Clock,
    /** Anyone may join without a join token (HYPERGPU_OPEN_POOL): for a trusted network only. */
    readonly openPool: boolean,
  ) {}

  /** Issues a token; the secret is in the answer once and never again (only its hash is stored). */
  async issue(input: IssueJoinTokenInput): Promise<{ token: string; joinToken: JoinTokenRecord }> {
    const now = this.clock.now();
    const token = this.credentials.issue();
    const joinToken = await this.repo.createJoinToken({
      tokenHash: this.credentials.hash(token),
      label: input.label ?? '',
      nodeName: input.nodeName ?? null,
      createdAt: now,
      expiresAt: input.expiresInSeconds ? now + input.expiresInSeconds * 1000 : null,
    });
    return { token, joinToken };
  }

  list(): Promise<JoinTokenRecord[]> {
    return this.repo.listJoinTokens();
  }

  async revoke(id: number): Promise<JoinTokenRecord> {
    const revoked = await this.repo.revokeJoinToken(id, this.clock.now());
    if (!revoked) throw new RequestError('NOT_FOUND', `join token ${id} does not exist`);
    return revoked;
  }

  async admit(name: string, joinToken: string | undefined): Promise<void> {
    if (!joinToken) {
      if (this.openPool) return;
      throw new AdmissionError(
        'JOIN_TOKEN_REQUIRED',
        `node name ${name} is new to this coordinator and no join token was presented: ask the operator for one (POST /api/join-tokens) and run the agent with --join-token or HYPERGPU_JOIN_TOKEN`,
      );
    }
    const found = await this.repo.joinTokenByHash(this.credentials.hash(joinToken));
    const now = this.clock.now();
    // One message for unknown, revoked, expired and wrong-name tokens would hide the fix; none of them says
    // anything about other tokens, so naming the reason leaks nothing a guesser could use.
    let why: string | null = null;
    if (!found) why = 'is not known to this coordinator';
    else if (found.revokedAt !== null) why = `was revoked at ${new Date(found.revokedAt).toISOString()}`;
    else if (found.expiresAt !== null && found.expiresAt <= now) why = `expired at ${new Date(found.expiresAt).toISOString()}`;
    else if (found.nodeName !== null && found.nodeName !== name) why = `is bound to another node name`;
    if (why === null) return;
    if (this.openPool) return; // an open pool admits anyone; a bad token there is not worth refusing
    throw new AdmissionError('JOIN_TOKEN_INVALID', `node ${name}: the join token presented ${why}; ask the operator for a valid one`);
  }
}
