// Builds the Next.js dashboard when there is no production build, or its sources are newer than the build.
// Used by `npm start` and by the test script before the browser tests.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Builds the dashboard when there is no production build or the sources changed since the last one. */
export function ensureDashboardBuild(): void {
  const buildId = path.join(ROOT, '.next', 'BUILD_ID');
  const builtAt = existsSync(buildId) ? statSync(buildId).mtimeMs : 0;
  const newest = newestMtime([path.join(ROOT, 'src', 'app'), path.join(ROOT, 'next.config.ts'), path.join(ROOT, 'public')]);
  if (builtAt > 0 && builtAt >= newest) return;
  process.stdout.write(builtAt ? 'Dashboard sources changed; rebuilding (next build)...\n' : 'Building the dashboard once (next build, about a minute on 2 cores)...\n');
  const result = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'next', 'dist', 'bin', 'next'), 'build'], {
    cwd: ROOT,
    stdio: 'inherit',
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
  });
  if (result.status !== 0) throw new Error('next build failed; see the output above');
}

function newestMtime(paths: string[]): number {
  let newest = 0;
  const visit = (p: string) => {
    if (!existsSync(p)) return;
    const st = statSync(p);
    if (st.isDirectory()) for (const entry of readdirSync(p)) visit(path.join(p, entry));
    else newest = Math.max(newest, st.mtimeMs);
  };
  paths.forEach(visit);
  return newest;
}


if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) ensureDashboardBuild();
