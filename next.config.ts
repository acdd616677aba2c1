// Next.js configuration for the dashboard. The custom server (src/server/main.ts) calls next() with this
// directory; pages are presentation only and talk to the coordinator over tRPC.
import { realpathSync } from 'node:fs';
import path from 'node:path';
import type { NextConfig } from 'next';

/**
 * Turbopack resolves packages only under its root. A checkout whose node_modules is a link to an install
 * elsewhere (git worktrees sharing one install) needs the root to be the directory both live under; in a plain
 * clone that is the project directory itself, Turbopack's default.
 */
function turbopackRoot(): string {
  const project = path.resolve(import.meta.dirname ?? process.cwd());
  let modules: string;
  try {
    modules = realpathSync(path.join(project, 'node_modules'));
  } catch {
    return project;
  }
  let root = project;
  while (!modules.startsWith(root + path.sep) && path.dirname(root) !== root) root = path.dirname(root);
  return root;
}

// Telemetry would dial out on a machine that has no internet; the scripts set it too, this is the backstop.
process.env.NEXT_TELEMETRY_DISABLED ??= '1';

const nextConfig: NextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  // `tsc --noEmit` checks the whole repo in the test script; Next checking again only costs build time.
  typescript: { ignoreBuildErrors: true },
  // The dev overlay's corner badge covers the node table at small widths.
  devIndicators: false,
  images: { unoptimized: true },
  // The dev server refuses /_next/* (HMR included) from origins other than localhost; tests and the
  // custom server use 127.0.0.1.
  allowedDevOrigins: ['127.0.0.1'],
  turbopack: { root: turbopackRoot() },
};

export default nextConfig;
