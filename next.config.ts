// Next.js configuration for the dashboard. The custom server (src/server/main.ts) calls next() with this
// directory; pages are presentation only and talk to the coordinator over tRPC.
import type { NextConfig } from 'next';

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
};

export default nextConfig;
