// Write-ahead journal of applied aggregated updates (the UpdateJournal port): one append-only blob per session,
// key `session-<id>.journal` in a BlobStore (on files: `<data>/journal/session-<id>.journal`, as before the
// store existed), a sequence of self-checking records. The coordinator appends a round's update and waits for
// the sync before it records the round as applied, so after a crash the latest checkpoint plus the journal
// entries the ledger lists rebuild the exact model. This file does no I/O of its own: every byte goes through
// the BlobStore port, so the same code runs on files and on the in-memory fake (which can simulate power loss).
//
// The record layout, and why each record carries a header check, are in records.ts with the code that reads and
// writes them.

import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import type { BlobStore, BlobUpdater, BlobWriter, JournalEntry, UpdateJournal } from '../../core/ports';
import {
  CHUNK_BYTES,
  checkJournalEntry,
  encodeHeader,
  JOURNAL_HEADER_BYTES,
  JournalCorruptError,
  payloadCorrupt,
  readExactly,
  scanFile,
} from './records';

export { checkJournalEntry, JOURNAL_HEADER_BYTES, JOURNAL_MAGIC, JOURNAL_VERSION, JournalCorruptError } from './records';

/** The key of a session's journal in its BlobStore. */
export function journalKey(sessionId: number): string {
  return `session-${sessionId}.journal`;
}

/** Where a crashed compaction of a build before the BlobStore left its output; removed by the next compaction. */
const legacyCompactionKey = (sessionId: number) => `${journalKey(sessionId)}.compact.tmp`;

/** What an appender knows about a session's file: where valid records end and which versions they hold. */
interface AppendState {
  size: number;
  offsets: number[];
  versions: number[];
}

/**
 * The UpdateJournal over a BlobStore (runtime.ts gives it the file store on `<data>/journal`). Operations on one
 * session run one at a time in call order (appends fired without awaiting land in that order); sessions do not
 * wait for each other. One process owns a journal store: two coordinators appending to the same blobs would
 * corrupt them.
 *
 * - append writes the record in place, syncs it (BlobUpdater.sync: fdatasync, plus the folder when the blob was
 *   created) and only then resolves. A torn tail left by a crash is cut off (and synced) before the first
 *   append after it. An entry whose model version is not above the last one supersedes: the entries from that
 *   version on are dropped first (they are leftovers of a crash that the ledger never recorded, since the
 *   coordinator appends version v only when its ledger says v - 1).
 * - read verifies every record's payload hash and returns copies.
 * - compact writes the kept records to a new blob and commits it over the journal (temporary file, fsync,
 *   rename, folder fsync), so at every instant either the old or the new journal is in place; both hold every
 *   entry above `version`.
 *
 * The caller must not change `entry.update` until append resolves (the bytes are staged and hashed in chunks).
 */
export function createUpdateJournal(blobs: BlobStore): UpdateJournal {
  // Float32Array memory is written as is; every platform Node ships on today is little-endian.
  if (endianness() !== 'LE') throw new Error('journal files are little-endian; this platform is big-endian');

  const states = new Map<number, AppendState>();
  const tails = new Map<number, Promise<unknown>>();

  function serial<T>(sessionId: number, work: () => Promise<T>): Promise<T> {
    const run = (tails.get(sessionId) ?? Promise.resolve()).then(work, work);
    const tail = run.catch(() => undefined);
    tails.set(sessionId, tail);
    // Forget an idle session's chain so the map does not grow with every session ever seen.
    void tail.then(() => {
      if (tails.get(sessionId) === tail) tails.delete(sessionId);
    });
    return run;
  }

  /** Opens the session's blob for writing, scanning it (once per process) and cutting off a torn tail. */
  async function openForAppend(sessionId: number): Promise<{ handle: BlobUpdater; state: AppendState }> {
    const key = journalKey(sessionId);
    const handle = await blobs.openUpdater(key);
    if (handle.created) states.set(sessionId, { size: 0, offsets: [], versions: [] });
    try {
      let state = states.get(sessionId);
      if (!state) {
        // Payloads before the last are not hashed here: they were synced by earlier appends, and read() checks them.
        const scan = await scanFile(handle, blobs.locate(key), sessionId, () => false);
        if (scan.validEnd < scan.size) {
          await handle.truncate(scan.validEnd);
          await handle.sync();
        }
        state = { size: scan.validEnd, offsets: scan.records.map((r) => r.offset), versions: scan.records.map((r) => r.header.modelVersion) };
        states.set(sessionId, state);
      }
      return { handle, state };
    } catch (error) {
      await handle.close().catch(() => undefined);
      throw error;
    }
  }

  /** The last append's staging pair, reused by the next one of the same size (one pair at a time is kept). */
  let spareStaging: Uint8Array[] | null = null;
  function takeStaging(size: number): Uint8Array[] {
    const spare = spareStaging;
    spareStaging = null;
    return spare?.[0].length === size ? spare : [new Uint8Array(size), new Uint8Array(size)];
  }

  async function appendNow(entry: JournalEntry): Promise<void> {
    const { sessionId } = entry;
    const { handle, state } = await openForAppend(sessionId);
    try {
      const superseded = state.versions.findIndex((version) => version >= entry.modelVersion);
      if (superseded !== -1) {
        // Synced before the new record is written: a disk that kept the new record but not the cut could leave a
        // superseded record valid behind it (the power-cut tests in tests/unit/fake-blob-store.test.ts catch that).
        await handle.truncate(state.offsets[superseded]);
        await handle.sync();
        state.size = state.offsets[superseded];
        state.offsets.length = superseded;
        state.versions.length = superseded;
      }

      // The header goes first with its hash unknown (a crash leaves a record that fails its header check: a torn
      // tail), then the payload, staged chunk by chunk so the hash describes exactly the bytes written, then the
      // real header over the first, and one sync for all of it (the blob's name too, when this append created it).
      const start = state.size;
      const payload = new Uint8Array(entry.update.buffer, entry.update.byteOffset, entry.update.byteLength);
      // Two staging buffers, so the next chunk is copied and hashed on this thread while the thread pool writes
      // the last one: the append costs about the longer of hashing and writing, not their sum. Kept for the next
      // append (a fresh buffer's page faults cost more than the copy into it); appends of different sessions run
      // concurrently, so each takes its own pair.
      const size = Math.min(CHUNK_BYTES, payload.length);
      const staging = takeStaging(size);
      await handle.write(new Uint8Array(JOURNAL_HEADER_BYTES), start);
      const hash = createHash('sha256');
      let writing: Promise<void> = Promise.resolve();
      for (let at = 0, k = 0; at < payload.length; at += CHUNK_BYTES, k++) {
        const source = payload.subarray(at, Math.min(at + CHUNK_BYTES, payload.length));
        // Its buffer was last written two chunks ago, and that write has finished: `writing` was awaited since.
        const chunk = staging[k % 2].subarray(0, source.length);
        chunk.set(source);
        hash.update(chunk);
        await writing;
        writing = handle.write(chunk, start + JOURNAL_HEADER_BYTES + at);
      }
      await writing;
      // Every write that read the staging pair has finished: the next append may take it.
      spareStaging = staging;
      await handle.write(encodeHeader(entry, hash.digest()), start);
      await handle.sync();

      state.offsets.push(start);
      state.versions.push(entry.modelVersion);
      state.size = start + JOURNAL_HEADER_BYTES + payload.length;
    } catch (error) {
      // What is on disk is no longer known: the next append rescans (and cuts off whatever this one left).
      states.delete(sessionId);
      throw error;
    } finally {
      await handle.close();
    }
  }

  async function readNow(sessionId: number, afterVersion: number): Promise<JournalEntry[]> {
    const key = journalKey(sessionId);
    const file = blobs.locate(key);
    const handle = await blobs.openReader(key);
    if (!handle) return [];
    try {
      // Every payload is checked: skipped ones by the scan, returned ones below while they are copied out (one
      // read and one hash each, rather than two).
      const scan = await scanFile(handle, file, sessionId, (header) => header.modelVersion <= afterVersion);
      const entries: JournalEntry[] = [];
      for (const [index, record] of scan.records.entries()) {
        if (record.header.modelVersion <= afterVersion) continue;
        const update = new Float32Array(record.header.paramCount);
        const bytes = new Uint8Array(update.buffer);
        const complete = await readExactly(handle, bytes, record.offset + JOURNAL_HEADER_BYTES);
        if (!complete || !createHash('sha256').update(bytes).digest().equals(record.header.payloadSha256)) {
          throw payloadCorrupt(file, index, record.offset, record.header);
        }
        const { round, modelVersion, samples } = record.header;
        entries.push({ sessionId, round, modelVersion, samples, update });
      }
      return entries;
    } finally {
      await handle.close();
    }
  }

  async function compactNow(sessionId: number, version: number): Promise<void> {
    const key = journalKey(sessionId);
    const file = blobs.locate(key);
    const handle = await blobs.openReader(key);
    if (!handle) return;
    let out: BlobWriter | null = null;
    try {
      await blobs.delete(legacyCompactionKey(sessionId));
      // Kept payloads are hashed while copied below; dropped ones are inside a checkpoint and need no check.
      const scan = await scanFile(handle, file, sessionId, () => false);
      const kept = scan.records.filter((r) => r.header.modelVersion > version);
      if (kept.length === scan.records.length && scan.validEnd === scan.size) return;

      out = await blobs.createWriter();
      const chunk = new Uint8Array(Math.max(1, Math.min(CHUNK_BYTES, scan.validEnd)));
      for (const record of kept) {
        const hash = createHash('sha256');
        for (let at = 0; at < record.bytes; at += CHUNK_BYTES) {
          const part = chunk.subarray(0, Math.min(CHUNK_BYTES, record.bytes - at));
          if (!(await readExactly(handle, part, record.offset + at))) {
            throw new JournalCorruptError(file, record.offset, `journal ${file}: record at byte ${record.offset} shrank during compaction`);
          }
          // The first JOURNAL_HEADER_BYTES of the record are its header; the rest is hashed as payload.
          hash.update(at === 0 ? part.subarray(JOURNAL_HEADER_BYTES) : part);
          await out.write(part);
        }
        if (!hash.digest().equals(record.header.payloadSha256)) throw payloadCorrupt(file, scan.records.indexOf(record), record.offset, record.header);
      }
      await out.commit(key);
      let offset = 0;
      const offsets = kept.map((r) => {
        const at = offset;
        offset += r.bytes;
        return at;
      });
      states.set(sessionId, { size: offset, offsets, versions: kept.map((r) => r.header.modelVersion) });
    } catch (error) {
      states.delete(sessionId);
      await out?.abort().catch(() => undefined);
      throw error;
    } finally {
      await handle.close();
    }
  }

  return {
    append(entry) {
      try {
        checkJournalEntry(entry);
      } catch (error) {
        return Promise.reject(error);
      }
      return serial(entry.sessionId, () => appendNow(entry));
    },

    read(sessionId, afterVersion) {
      return serial(sessionId, () => readNow(sessionId, afterVersion));
    },

    compact(sessionId, version) {
      return serial(sessionId, () => compactNow(sessionId, version));
    },
  };
}

/** Size in bytes of a session's journal (0 when there is none): for logs and tests. */
export async function journalBytes(blobs: BlobStore, sessionId: number): Promise<number> {
  const reader = await blobs.openReader(journalKey(sessionId));
  if (!reader) return 0;
  try {
    return await reader.size();
  } finally {
    await reader.close();
  }
}
