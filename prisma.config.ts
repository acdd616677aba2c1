// Prisma CLI configuration. The URL lives here, not in the schema (Prisma 7). `.env` is not loaded, and
// `env()` from prisma/config throws when the variable is unset, so fall back explicitly.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'file:./data/hypergpu.db' },
});
