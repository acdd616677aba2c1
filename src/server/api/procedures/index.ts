// The registry of API procedures. The tree's shape is the tRPC router's shape (training.status, nodes.byId,
// live.dashboard, health); the REST facade serves the procedures that declare a REST binding. A procedure
// exists once, in its own file: procedures/<domain>/<name>.ts for <domain>.<name> (kebab-case file names).
import { isDefinition, type ProcedureDefinition, type ProcedureTree } from '../procedure';
import { list as datasetList } from './datasets/list';
import { issueJoinToken } from './agents/issue-join-token';
import { joinTokens } from './agents/join-tokens';
import { revokeJoinToken } from './agents/revoke-join-token';
import { leaderboard } from './blockchain/leaderboard';
import { proof } from './blockchain/proof';
import { rewards } from './blockchain/rewards';
import { session as chainSession } from './blockchain/session';
import { health } from './health';
import { dashboard } from './live/dashboard';
import { byId } from './nodes/by-id';
import { list } from './nodes/list';
import { checkpoints } from './training/checkpoints';
import { contributions } from './training/contributions';
import { events } from './training/events';
import { ledger } from './training/ledger';
import { metrics } from './training/metrics';
import { model } from './training/model';
import { pause } from './training/pause';
import { resume } from './training/resume';
import { rounds } from './training/rounds';
import { session } from './training/session';
import { sessions } from './training/sessions';
import { start } from './training/start';
import { status } from './training/status';
import { stop } from './training/stop';

export const procedureTree = {
  health,
  datasets: { list: datasetList },
  training: { status, model, metrics, sessions, session, rounds, contributions, checkpoints, events, ledger, start, pause, resume, stop },
  nodes: { list, byId },
  live: { dashboard },
  agents: { issueJoinToken, joinTokens, revokeJoinToken },
  blockchain: { session: chainSession, rewards, proof, leaderboard },
};

export interface NamedProcedure {
  /** The tRPC path, e.g. 'training.status'. */
  path: string;
  definition: ProcedureDefinition;
}

/** Every procedure with its tRPC path, depth first in declaration order. */
export function listProcedures(tree: ProcedureTree = procedureTree, prefix = ''): NamedProcedure[] {
  return Object.entries(tree).flatMap(([key, node]) =>
    isDefinition(node) ? [{ path: `${prefix}${key}`, definition: node }] : listProcedures(node, `${prefix}${key}.`),
  );
}
