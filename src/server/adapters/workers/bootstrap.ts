// The server's workers start through the shared bootstrap in src/ml, which the agent's training thread uses too
// (the agent may not import src/server). Kept here so the server's imports of spawnWorker stay where they were.
export { spawnWorker } from '../../../ml/worker-bootstrap';
