// A TypeScript worker entry for tests/integration/worker-supervisor.test.ts: it only runs if the supervisor's
// bootstrap registered tsx's loader in the thread (type annotations, an enum and `satisfies` are not JavaScript).
import { parentPort, workerData } from 'node:worker_threads';

enum Kind {
  Echo = 'echo',
  Crash = 'crash',
}

interface Request {
  id: number;
  kind: Kind;
  value: number;
  delayMs: number;
}

if (!parentPort) throw new Error('echo.worker.ts runs as a worker thread');
const port = parentPort;
const greeting = (workerData as { greeting?: string } | undefined)?.greeting ?? 'hello';
port.postMessage({ type: 'ready', greeting } satisfies { type: string; greeting: string });
port.on('message', (request: Request) => {
  if (request.kind === Kind.Crash) process.exit(7);
  setTimeout(() => port.postMessage({ type: 'reply', id: request.id, value: request.value * 2 }), request.delayMs);
});
