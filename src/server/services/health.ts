// Component health for GET /health and the health page. Each component registers a probe; `required` ones are
// what the coordinator cannot train without (the database, the aggregator workers, the agent channel): one of
// them down makes the whole report 'down' (HTTP 503). Optional ones (the evaluator; the chain, which the
// settlement work registers) only make it 'degraded'. Probes run concurrently, each under a time limit: a hung
// database must answer /health with 'down', not hang it.
//
// The probes do real work (a database read, a mean through the worker threads, an RPC to the chain): about 6-10 ms
// of the server's CPU per report, measured by `npm run bench -- api`. /health is public, so a stranger asking for
// it in a loop would have cost the coordinator a core. Callers within REPORT_MAX_AGE_MS of a report share it, and
// callers while a check runs wait for that one: a probe's cost is paid at most once a second, whoever asks.
export type ComponentStatus = 'up' | 'down' | 'idle';

export interface ComponentReport {
  name: string;
  status: ComponentStatus;
  required: boolean;
  detail: string | null;
  /** How long the probe took. */
  latencyMs: number;
}

export interface HealthProbe {
  /** What the coordinator needs to train: down means 503. */
  required: boolean;
  /** Resolves with the state and a line for people; throwing (or taking too long) is 'down'. */
  check(): Promise<{ status: ComponentStatus; detail: string | null }> | { status: ComponentStatus; detail: string | null };
}

export interface HealthSummary {
  status: 'ok' | 'degraded' | 'down';
  components: ComponentReport[];
}

export const PROBE_TIMEOUT_MS = 2_000;

/** How long a finished report answers later checks (a load balancer polls every few seconds; a change shows within this). */
export const REPORT_MAX_AGE_MS = 1_000;

export class HealthRegistry {
  private readonly probes = new Map<string, HealthProbe>();
  private running: Promise<HealthSummary> | null = null;
  private last: { summary: HealthSummary; at: number } | null = null;
  /** Counts registrations: a check that started before one must not become the cached report. */
  private registrations = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxAgeMs = REPORT_MAX_AGE_MS,
  ) {}

  /** Adds (or replaces) a component; the order of registration is the order of the report. */
  register(name: string, probe: HealthProbe): void {
    this.probes.set(name, probe);
    // A report without the new component (or with the one it replaced), made or being made, no longer answers.
    this.last = null;
    this.running = null;
    this.registrations++;
  }

  /** The report: the last one when it is under maxAgeMs old, the one being made when a check runs, else a new one. */
  check(timeoutMs = PROBE_TIMEOUT_MS): Promise<HealthSummary> {
    if (this.last && this.now() - this.last.at < this.maxAgeMs) return Promise.resolve(this.last.summary);
    if (this.running) return this.running;
    const registrations = this.registrations;
    const running = this.checkNow(timeoutMs).then((summary) => {
      if (registrations === this.registrations) this.last = { summary, at: this.now() };
      return summary;
    });
    this.running = running;
    const clear = () => {
      if (this.running === running) this.running = null;
    };
    running.then(clear, clear);
    return running;
  }

  private async checkNow(timeoutMs: number): Promise<HealthSummary> {
    const components = await Promise.all([...this.probes].map(([name, probe]) => this.run(name, probe, timeoutMs)));
    const down = components.filter((c) => c.status === 'down');
    const status = down.some((c) => c.required) ? 'down' : down.length > 0 ? 'degraded' : 'ok';
    return { status, components };
  }

  private async run(name: string, probe: HealthProbe, timeoutMs: number): Promise<ComponentReport> {
    const started = this.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)));
      const result = await Promise.race([Promise.resolve().then(() => probe.check()), timeout]);
      return { name, required: probe.required, status: result.status, detail: result.detail, latencyMs: this.now() - started };
    } catch (error) {
      return { name, required: probe.required, status: 'down', detail: error instanceof Error ? error.message : String(error), latencyMs: this.now() - started };
    } finally {
      clearTimeout(timer);
    }
  }
}
