// Offline stand-in for `prisma migrate diff`: prints the SQL that takes a database built from the committed
// migrations to prisma/schema.prisma, using Prisma's own schema engine compiled to WebAssembly.
//
//   npx tsx prisma/schema-diff.ts            exit 0 and "-- This is an empty migration." when in sync,
//                                            exit 2 and the SQL of the next migration otherwise
//   npx tsx prisma/schema-diff.ts --from-empty
//                                            the whole schema's SQL from an empty database: regenerates an
//                                            init migration edited in place before anything shipped
//
// Use it after editing the schema: save the output as prisma/migrations/<UTC yyyymmddHHMMSS>_<name>/migration.sql.
// Why this exists: the CLI's native schema engine is downloaded on first use, which fails offline (see
// shared/notes/stack.md). The wasm engine is not a project dependency; point PRISMA_SCHEMA_ENGINE_WASM at an
// unpacked @prisma/schema-engine-wasm package (`npm pack @prisma/schema-engine-wasm@<version>` then untar);
// 8.1.0-2.59be4fda12412a79eeb9c2ae727b6aa723593323 was used for the init migration.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3';
import { bindMigrationAwareSqlAdapterFactory } from '@prisma/driver-adapter-utils';
import { applyMigrations } from '../src/server/adapters/db/migrate';

const root = fileURLToPath(new URL('..', import.meta.url));
const engineDir = process.env.PRISMA_SCHEMA_ENGINE_WASM;
if (!engineDir) {
  console.error('Set PRISMA_SCHEMA_ENGINE_WASM to an unpacked @prisma/schema-engine-wasm package folder.');
  process.exit(1);
}

// Node 20 cannot import a .wasm module entry, so instantiate it by hand and hand it to the generated glue.
const glue = await import(pathToFileURL(join(engineDir, 'schema_engine_bg.js')).href);
const module = new WebAssembly.Module(readFileSync(join(engineDir, 'schema_engine_bg.wasm')));
const instance = new WebAssembly.Instance(module, { './schema_engine_bg.js': glue });
glue.__wbg_set_wasm(instance.exports);
(instance.exports.__wbindgen_start as () => void)();

const schema = readFileSync(join(root, 'prisma', 'schema.prisma'), 'utf8');
const work = mkdtempSync(join(tmpdir(), 'hypergpu-schema-diff-'));
try {
  // Build the "from" side with the same code the server runs, so this also checks that the migrations apply.
  const dbFile = join(work, 'migrated.db');
  const fromEmpty = process.argv.includes('--from-empty');
  applyMigrations(dbFile, fromEmpty ? mkdtempSync(join(work, 'no-migrations-')) : join(root, 'prisma', 'migrations'));
  const adapter = bindMigrationAwareSqlAdapterFactory(new PrismaBetterSqlite3({ url: dbFile }));
  const engine = await glue.SchemaEngine.new({ datamodels: [['schema.prisma', schema]] }, () => {}, adapter);
  const files = [{ path: 'schema.prisma', content: schema }];
  const result = await engine.diff({
    // "schemaDatasource" is the database the adapter is connected to: the freshly migrated file.
    from: { tag: 'schemaDatasource', files, configDir: root },
    to: { tag: 'schemaDatamodel', files },
    script: true,
    exitCode: true,
    filters: { externalTables: [], externalEnums: [] },
  });
  const sql: string = result.stdout ?? '';
  process.stdout.write(sql.endsWith('\n') ? sql : `${sql}\n`);
  process.exitCode = /^-- This is an empty migration\.\s*$/.test(sql) ? 0 : 2;
} finally {
  rmSync(work, { recursive: true, force: true });
}
