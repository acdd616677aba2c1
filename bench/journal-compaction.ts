// What compacting the update journal costs when it keeps N entries (the checkpointer keeps the entries after the
// oldest retained checkpoint): append `--entries` MLP-sized updates, then compact away the first `--drop`.
//   npx tsx bench/journal-compaction.ts [--entries 150] [--drop 50] [--params 109386]
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createFileBlobStore } from '../src/server/adapters/blob-store';
import { createUpdateJournal, journalBytes } from '../src/server/adapters/journal/update-journal';

const { values } = parseArgs({ options: { entries: { type: 'string' }, drop: { type: 'string' }, params: { type: 'string' } } });
const ENTRIES = Number(values.entries ?? 150);
const DROP = Number(values.drop ?? 50);
const PARAMS = Number(values.params ?? 109_386);
const dir = mkdtempSync(path.join(os.tmpdir(), 'hypergpu-journal-'));

async function main(): Promise<void> {
  const blobs = createFileBlobStore(dir);
  const journal = createUpdateJournal(blobs);
  const update = new Float32Array(PARAMS).map((_, i) => Math.sin(i));
  let appendMs = 0;
  for (let v = 1; v <= ENTRIES; v++) {
    const t = performance.now();
    await journal.append({ sessionId: 1, round: v, modelVersion: v, samples: 512, update });
    appendMs += performance.now() - t;
  }
  const before = await journalBytes(blobs, 1);
  const t = performance.now();
  await journal.compact(1, DROP);
  const compactMs = performance.now() - t;
  const after = await journalBytes(blobs, 1);
  process.stdout.write(`${JSON.stringify({ params: PARAMS, entries: ENTRIES, dropped: DROP, appendMsEach: +(appendMs / ENTRIES).toFixed(2), bytesBefore: before, bytesAfter: after, compactMs: +compactMs.toFixed(1), loadavg: os.loadavg().map((l) => +l.toFixed(2)) })}\n`);
}

main()
  .catch((error) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
