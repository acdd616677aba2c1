// The coordinator's own health probes (GET /health): each asks its component to do a little real work, so a
// closed database or dead worker threads show as down, not as "the object exists". More components register
// the same way (runtime.health.register('chain', …) for the settlement chain).
import type { AggregatorPool } from './adapters/workers/aggregator-pool';
import type { AgentGateway } from './adapters/agent-gateway';
import type { TrainingRepository } from './core/ports';
import type { CoordinatorService } from './services/control';
import { HealthRegistry } from './services/health';

export function coordinatorHealth(parts: { repo: TrainingRepository; aggregator: AggregatorPool; coordinator: CoordinatorService; gateway: AgentGateway }): HealthRegistry {
  const health = new HealthRegistry();
  health.register('database', {
    required: true,
    check: async () => {
      // A real read through the one connection (SQLite, WAL): a closed or locked database throws or times out.
      const sessions = await parts.repo.listSessions(1);
      return { status: 'up', detail: sessions.length ? `latest session ${sessions[0].id}` : 'no sessions yet' };
    },
  });
  health.register('aggregator', {
    required: true,
    check: async () => {
      // A four-value mean through the worker threads: what every round needs, at no cost worth measuring.
      const slot = parts.aggregator.acquire(4);
      try {
        slot.view.set([1, 2, 3, 4]);
        const mean = await parts.aggregator.weightedMean([slot], [1]);
        if (mean[3] !== 4) throw new Error(`the workers computed ${Array.from(mean).join(',')} for 1,2,3,4`);
      } finally {
        parts.aggregator.release(slot);
      }
      const stats = parts.aggregator.stats();
      return { status: 'up', detail: `${parts.aggregator.workerCount} ${parts.aggregator.backend} worker(s), ${stats.workerRestarts} restart(s)` };
    },
  });
  health.register('evaluator', { required: false, check: () => parts.coordinator.evaluatorHealth() });
  health.register('agent-channel', {
    required: true,
    check: () => ({ status: 'up', detail: `${parts.gateway.connections()} agent connection(s)` }),
  });
  return health;
}
