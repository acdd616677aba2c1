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
import { config } from './config';
import { activity } from './nodes/activity';
import { banAddress } from './nodes/ban-address';
import { kick } from './nodes/kick';
import { roundTimelineProcedure } from './training/round-timeline';
import { summaries } from './training/summaries';
import { dashboard } from './live/dashboard';
import { byId } from './nodes/by-id';
import { list } from './nodes/list';
import { contributionTimeline } from './nodes/contribution-timeline';
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
import { checkpointModelJson } from './models/checkpoint-model-json';
import { checkpointModelWeights } from './models/checkpoint-model-weights';
import { latestModelJson } from './models/latest-model-json';
import { latestModelWeights } from './models/latest-model-weights';

export const procedureTree = {
  health,
  config,
  datasets: { list: datasetList },
  training: { status, model, metrics, sessions, summaries, session, rounds, contributions, checkpoints, events, ledger, roundTimeline: roundTimelineProcedure, start, pause, resume, stop },
  nodes: { list, byId, activity, kick, banAddress, contributionTimeline },
  live: { dashboard },
  agents: { issueJoinToken, joinTokens, revokeJoinToken },
  blockchain: { session: chainSession, rewards, proof, leaderboard },
  models: { latestModelJson, checkpointModelJson },
};

/** Procedures served over REST only: their answers are bytes, which tRPC's JSON cannot carry. */
export const restOnlyTree = {
  models: { latestModelWeights, checkpointModelWeights },
};

export interface NamedProcedure {
  /** The tRPC path, e.g. 'training.status'. */
  path: string;
  definition: ProcedureDefinition;
}

/** Every procedure the REST facade serves: the tRPC tree and the REST-only one. */
export function listRestProcedures(): NamedProcedure[] {
  return [...listProcedures(procedureTree), ...listProcedures(restOnlyTree)];
}

/** Every procedure with its tRPC path, depth first in declaration order. */
export function listProcedures(tree: ProcedureTree = procedureTree, prefix = ''): NamedProcedure[] {
  return Object.entries(tree).flatMap(([key, node]) =>
    isDefinition(node) ? [{ path: `${prefix}${key}`, definition: node }] : listProcedures(node, `${prefix}${key}.`),
  );
}
