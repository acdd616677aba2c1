// Types for scripts/build-server.mjs, so the tests and benchmarks that start the bundled server typecheck (allowJs is off).
export const SERVER_BUILD_DIR: string;
/** .build/server/main.mjs: the bundled server entry. */
export const SERVER_BUNDLE: string;
export const SERVER_BUNDLE_URL: string;
/** Bundles the server and its worker entries; resolves with the files it rewrote (none when nothing changed). */
export function buildServer(options?: { quiet?: boolean; stopService?: boolean }): Promise<string[]>;
