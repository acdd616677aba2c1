// The memory benchmark's 100-node row alone (bench/memory.ts measureHundred, the bundle as `npm start` runs it),
// with the RSS over time and the server's audit log lines: what the full `npm run bench -- memory` (about 5
// minutes, both loaders) takes too long for when only this row is being worked on.
//   npx tsx bench/memory-hundred.ts [--tsx] [--quick]
import { createWriteStream } from 'node:fs';
import { loadAverage } from './lib/common';
import { processMemory, type ServerHandle } from './lib/procs';
import { measureHundred } from './memory';

const MB = 2 ** 20;
const args = new Set(process.argv.slice(2));
const mode = args.has('--tsx') ? 'tsx' : 'bundle';
const timeline: Array<{ s: number; mb: number }> = [];
let server: ServerHandle | null = null;
let timer: NodeJS.Timeout | null = null;
const started = Date.now();
console.log(`load average before: ${loadAverage().map((x) => x.toFixed(2)).join(' ')}`);
try {
  const result = await measureHundred(mode, args.has('--quick'), (line) => console.log(line), JSON.parse(process.env.BENCH_SERVER_ENV ?? '{}') as Record<string, string>, (s) => {
    server = s;
    if (process.env.SERVER_LOG) {
      const out = createWriteStream(process.env.SERVER_LOG);
      s.child.stdout?.on('data', (c: Buffer) => out.write(c));
      s.child.stderr?.on('data', (c: Buffer) => out.write(c));
    }
    timer = setInterval(() => {
      try {
        timeline.push({ s: (Date.now() - started) / 1000, mb: processMemory(s.pid).rss / MB });
      } catch {
        // the server has exited
      }
    }, 500);
  });
  console.log(JSON.stringify(result));
} finally {
  if (timer) clearInterval(timer);
}
console.log(`load average after: ${loadAverage().map((x) => x.toFixed(2)).join(' ')}`);
console.log('RSS over time (s: MB): ' + timeline.map((p) => `${p.s.toFixed(0)}:${p.mb.toFixed(0)}`).join(' '));
const output = (server as ServerHandle | null)?.output() ?? '';
const auditLines = output.split('\n').filter((l) => /queue full|audited:|spilled/i.test(l));
console.log(`server audit log lines: ${auditLines.length}`);
for (const line of auditLines.slice(0, 80)) console.log('  ' + line.slice(0, 200));
if (auditLines.length > 80) for (const line of auditLines.slice(-5)) console.log('  ' + line.slice(0, 200));
