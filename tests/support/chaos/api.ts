// The coordinator's REST API as the chaos harness reads it. Only the fields the harness uses are typed;
// everything is read defensively (extra fields are ignored, missing optional ones are tolerated).
import { TEST_ADMIN_TOKEN } from '../server-process';

export type SessionState = 'idle' | 'running' | 'paused' | 'stopped' | 'completed' | 'failed';

export interface StatusResponse {
  state: SessionState;
  sessionId: number | null;
  round: number;
  modelVersion: number;
  nodes: { total: number; active: number; training: number; failed: number };
  session: {
    id?: number;
    lastTestAccuracy: number | null;
    totalSamples: number;
    message?: string | null;
    [key: string]: unknown;
  } | null;
}

export type NodeStatus = 'connecting' | 'idle' | 'training' | 'failed' | 'left';

export interface NodeInfo {
  id: number;
  name: string;
  status: NodeStatus;
  statusReason: string | null;
  /** Epoch ms on the server's clock; absent on coordinators that predate it. */
  statusChangedAt?: number;
  lastHeartbeatAt: number;
  acceptedContributions: number;
  rejectedContributions: number;
  acceptedSamples: number;
  [key: string]: unknown;
}

export interface LedgerResponse {
  ok: boolean;
  problems: string[];
  appliedRounds?: number;
  modelVersion?: number;
  appliedUpdates?: number;
  appliedSamples?: number;
  modelSamples?: number;
  rejectedByReason?: Record<string, number>;
  duplicates?: number;
  [key: string]: unknown;
}

export interface SessionEventInfo {
  at: number;
  round: number;
  kind: string;
  message: string;
  nodeId?: number | null;
  detail?: Record<string, unknown> | null;
}

export interface RoundInfo {
  round: number;
  openedAt: number;
  closedAt: number;
  applied: boolean;
  updates: number;
  samples: number;
  failures: number;
  modelVersion?: number;
  totalSamples?: number;
  [key: string]: unknown;
}

export interface ContributionInfo {
  round: number;
  nodeId: number;
  attempt: number;
  samples: number;
  status: 'applied' | 'rejected';
  reason: string | null;
  receivedAt: number;
  epoch?: number;
  shardStart?: number;
  shardCount?: number;
  [key: string]: unknown;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly path: string,
    message: string,
  ) {
    super(message);
  }
}

export class CoordinatorApi {
  constructor(readonly baseUrl: string) {}

  private async request<T>(method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 5000): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      // The cluster starts its servers with this token (cluster.ts): pause and resume need the operator.
      headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new ApiError(res.status, path, `${method} ${path}: HTTP ${res.status} ${text.slice(0, 300)}`);
    return JSON.parse(text) as T;
  }

  get<T>(path: string, timeoutMs?: number): Promise<T> {
    return this.request<T>('GET', path, undefined, timeoutMs);
  }

  post<T>(path: string, body?: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  async healthy(): Promise<boolean> {
    try {
      const res = await fetch(`${this.baseUrl}/health`, { signal: AbortSignal.timeout(1000) });
      return res.ok;
    } catch {
      return false;
    }
  }

  status(): Promise<StatusResponse> {
    return this.get('/api/status');
  }

  async nodes(): Promise<NodeInfo[]> {
    return (await this.get<{ nodes: NodeInfo[] }>('/api/nodes')).nodes;
  }

  ledger(sessionId: number): Promise<LedgerResponse> {
    return this.get(`/api/sessions/${sessionId}/ledger`, 30_000);
  }

  async events(sessionId: number): Promise<SessionEventInfo[]> {
    return (await this.get<{ events: SessionEventInfo[] }>(`/api/sessions/${sessionId}/events`, 30_000)).events;
  }

  async rounds(sessionId: number): Promise<RoundInfo[]> {
    return (await this.get<{ rounds: RoundInfo[] }>(`/api/sessions/${sessionId}/rounds`, 30_000)).rounds;
  }

  async contributions(sessionId: number): Promise<ContributionInfo[]> {
    return (await this.get<{ contributions: ContributionInfo[] }>(`/api/sessions/${sessionId}/contributions`, 30_000)).contributions;
  }

  pause(): Promise<unknown> {
    return this.post('/api/training/pause');
  }

  resume(): Promise<unknown> {
    return this.post('/api/training/resume');
  }
}

/** Runs a request and turns any failure into null (for optional endpoints and pollers during a crash). */
export async function optional<T>(request: () => Promise<T>): Promise<T | null> {
  try {
    return await request();
  } catch {
    return null;
  }
}
