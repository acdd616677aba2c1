// Write-ahead journal of applied aggregated updates (the UpdateJournal port): one append-only blob per session,
// key `session-<id>.journal` in a BlobStore (on files: `<data>/journal/session-<id>.journal`, as before the
// store existed), a sequence of self-checking records. The coordinator appends a round's update and waits for
// the sync before it records the round as applied, so after a crash the latest checkpoint plus the journal
// entries the ledger lists rebuild the exact model. This file does no I/O of its own: every byte goes through
// the BlobStore port, so the same code runs on files and on the in-memory fake (which can simulate power loss).
//
// Record layout (little-endian), format version 1:
//   0  4 bytes  magic "HGJR"
//   4  u16      format version (1)
//   6  u16      header length in bytes (64)
//   8  u32      sessionId
//  12  u32      round
//  16  u32      modelVersion (after applying this update)
//  20  u32      paramCount
//  24  u32      samples
//  28  u32      header check: first 4 bytes (LE) of sha256(header bytes 0-27 and 32-63)
//  32  32 bytes sha256 of the payload
//  64  float32[paramCount] the update
//
// Why a separate header check: the payload hash alone cannot say whether a damaged paramCount is telling the
// truth, so a bad header could otherwise swallow the records after it. With it, recovery can tell a torn tail
// (a crash mid-append: the damage runs to the end of the file and no valid record follows) from corruption in
// the middle (a valid record follows the damage), which is refused loudly instead of being silently cut off.

import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import type { BlobReader, BlobStore, BlobUpdater, BlobWriter, JournalEntry, UpdateJournal } from '../core/ports';

export const JOURNAL_MAGIC = 'HGJR';
export const JOURNAL_VERSION = 1;
export const JOURNAL_HEADER_BYTES = 64;
const MAGIC_BYTES = Buffer.from(JOURNAL_MAGIC, 'latin1');
// Big enough that syscalls and hash updates are cheap per byte, small enough not to hold the event loop long.
const CHUNK_BYTES = 8 * 1024 * 1024;
const U32_MAX = 0xffff_ffff;

/** A journal file is damaged somewhere other than its last record: replaying around it could skip an update. */
export class JournalCorruptError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    message: string,
  ) {
    super(message);
    this.name = 'JournalCorruptError';
  }
}

/** The key of a session's journal in its BlobStore. */
export function journalKey(sessionId: number): string {
  return `session-${sessionId}.journal`;
}

/** Where a crashed compaction of a build before the BlobStore left its output; removed by the next compaction. */
const legacyCompactionKey = (sessionId: number) => `${journalKey(sessionId)}.compact.tmp`;

function u32(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) throw new RangeError(`journal entry ${what} must be a u32, got ${value}`);
}

/** What append accepts; shared with the in-memory fake (tests/support/fake-journal.ts). */
export function checkJournalEntry(entry: JournalEntry): void {
  u32('sessionId', entry.sessionId);
  u32('round', entry.round);
  u32('modelVersion', entry.modelVersion);
  u32('samples', entry.samples);
  if (!(entry.update instanceof Float32Array)) throw new TypeError('journal entry update must be a Float32Array');
  u32('paramCount', entry.update.length);
}

interface RecordHeader {
  sessionId: number;
  round: number;
  modelVersion: number;
  paramCount: number;
  samples: number;
  payloadSha256: Buffer;
}

function headerCheck(header: Uint8Array): number {
  return createHash('sha256').update(header.subarray(0, 28)).update(header.subarray(32, 64)).digest().readUInt32LE(0);
}

function encodeHeader(entry: JournalEntry, payloadSha256: Buffer): Buffer {
  const header = Buffer.alloc(JOURNAL_HEADER_BYTES);
  MAGIC_BYTES.copy(header, 0);
  header.writeUInt16LE(JOURNAL_VERSION, 4);
  header.writeUInt16LE(JOURNAL_HEADER_BYTES, 6);
  header.writeUInt32LE(entry.sessionId, 8);
  header.writeUInt32LE(entry.round, 12);
  header.writeUInt32LE(entry.modelVersion, 16);
  header.writeUInt32LE(entry.update.length, 20);
  header.writeUInt32LE(entry.samples, 24);
  payloadSha256.copy(header, 32);
  header.writeUInt32LE(headerCheck(header), 28);
  return header;
}

/** The header, or why these 64 bytes are not a valid record header of this session. */
function decodeHeader(header: Buffer, sessionId: number): RecordHeader | string {
  if (!header.subarray(0, 4).equals(MAGIC_BYTES)) return 'bad magic';
  if (header.readUInt32LE(28) !== headerCheck(header)) return 'header check mismatch';
  const version = header.readUInt16LE(4);
  if (version !== JOURNAL_VERSION) return `format version ${version}, this build reads ${JOURNAL_VERSION}`;
  if (header.readUInt16LE(6) !== JOURNAL_HEADER_BYTES) return `header length ${header.readUInt16LE(6)}`;
  const recordSession = header.readUInt32LE(8);
  if (recordSession !== sessionId) return `record of session ${recordSession}`;
  return {
    sessionId: recordSession,
    round: header.readUInt32LE(12),
    modelVersion: header.readUInt32LE(16),
    paramCount: header.readUInt32LE(20),
    samples: header.readUInt32LE(24),
    payloadSha256: Buffer.from(header.subarray(32, 64)),
  };
}

async function readExactly(handle: BlobReader, into: Uint8Array, position: number): Promise<boolean> {
  let at = 0;
  while (at < into.length) {
    const bytesRead = await handle.read(into.subarray(at), position + at);
    if (bytesRead === 0) return false;
    at += bytesRead;
  }
  return true;
}

/** sha256 of `length` bytes at `position`, read in chunks into `scratch` (no allocation of the whole payload). */
async function hashRange(handle: BlobReader, position: number, length: number, scratch: Uint8Array): Promise<Buffer | null> {
  const hash = createHash('sha256');
  for (let at = 0; at < length; at += scratch.length) {
    const chunk = scratch.subarray(0, Math.min(scratch.length, length - at));
    if (!(await readExactly(handle, chunk, position + at))) return null;
    hash.update(chunk);
  }
  return hash.digest();
}

interface RecordIndex {
  offset: number;
  bytes: number;
  header: RecordHeader;
}

interface ScanResult {
  records: RecordIndex[];
  /** Bytes of valid records; anything after is a torn tail. */
  validEnd: number;
  size: number;
}

/**
 * Walks the record headers of a journal file. `verify` says which records' payloads to hash; the last one is
 * always hashed, since a crash can leave a full-length record with a torn payload.
 *
 * Which damage is a torn tail: appends run one at a time and each is fsynced before the next starts, so a crash
 * can only damage the last record, and the damage runs to the end of the file. Hence a record with a bad or
 * incomplete header ends the scan as a torn tail when no valid record header follows it, and a full-length
 * record whose payload fails its hash is torn only when it is the last thing in the file. Anything else throws
 * JournalCorruptError.
 */
async function scanFile(handle: BlobReader, file: string, sessionId: number, verify: (header: RecordHeader) => boolean): Promise<ScanResult> {
  const size = await handle.size();
  const records: RecordIndex[] = [];
  const header = Buffer.alloc(JOURNAL_HEADER_BYTES);
  const scratch = new Uint8Array(Math.max(1, Math.min(CHUNK_BYTES, size)));
  let offset = 0;
  let previousVersion = -1;
  let previousVerified = true;
  while (offset < size) {
    const damage = async (reason: string): Promise<ScanResult> => {
      const next = await findValidHeader(handle, sessionId, offset + 1, size);
      if (next !== null) {
        throw new JournalCorruptError(
          file,
          offset,
          `journal ${file}: record ${records.length} at byte ${offset} is damaged (${reason}) and a valid record follows at byte ` +
            `${next}; refusing to replay around it`,
        );
      }
      // A torn tail means the record before it was fsynced whole. If it was not, the damage is not a crash's, and
      // the caller (append) must not cut the file at a boundary it guessed wrong.
      const previous = records.at(-1);
      if (previous && !previousVerified) {
        const actual = await hashRange(handle, previous.offset + JOURNAL_HEADER_BYTES, previous.bytes - JOURNAL_HEADER_BYTES, scratch);
        if (actual === null || !actual.equals(previous.header.payloadSha256)) throw payloadCorrupt(file, records.length - 1, previous.offset, previous.header);
      }
      return { records, validEnd: offset, size };
    };
    if (size - offset < JOURNAL_HEADER_BYTES || !(await readExactly(handle, header, offset))) return damage('incomplete header');
    const decoded = decodeHeader(header, sessionId);
    if (typeof decoded === 'string') return damage(decoded);
    const bytes = JOURNAL_HEADER_BYTES + decoded.paramCount * 4;
    if (offset + bytes > size) return damage(`incomplete payload: ${size - offset} of ${bytes} bytes`);
    const last = offset + bytes === size;
    previousVerified = last || verify(decoded);
    if (previousVerified) {
      const actual = await hashRange(handle, offset + JOURNAL_HEADER_BYTES, bytes - JOURNAL_HEADER_BYTES, scratch);
      if (actual === null || !actual.equals(decoded.payloadSha256)) {
        if (last) return damage('payload sha256 mismatch');
        throw payloadCorrupt(file, records.length, offset, decoded);
      }
    }
    if (decoded.modelVersion <= previousVersion) {
      // append keeps versions strictly increasing, so this is not something a crash produces.
      throw new JournalCorruptError(
        file,
        offset,
        `journal ${file}: record ${records.length} at byte ${offset} has model version ${decoded.modelVersion} after ${previousVersion}`,
      );
    }
    previousVersion = decoded.modelVersion;
    records.push({ offset, bytes, header: decoded });
    offset += bytes;
  }
  return { records, validEnd: offset, size };
}

function payloadCorrupt(file: string, index: number, offset: number, header: RecordHeader): JournalCorruptError {
  return new JournalCorruptError(
    file,
    offset,
    `journal ${file}: record ${index} at byte ${offset} (model version ${header.modelVersion}) fails its payload sha256 ` +
      'and is not the last record; refusing to replay around it',
  );
}

/** Offset of the first valid record header at or after `from`, or null. Only runs when something is damaged. */
async function findValidHeader(handle: BlobReader, sessionId: number, from: number, size: number): Promise<number | null> {
  const window = Buffer.allocUnsafe(Math.min(CHUNK_BYTES + JOURNAL_HEADER_BYTES, Math.max(1, size - from)));
  const header = Buffer.alloc(JOURNAL_HEADER_BYTES);
  for (let base = from; base < size; base += CHUNK_BYTES) {
    const length = Math.min(window.length, size - base);
    const chunk = window.subarray(0, length);
    if (!(await readExactly(handle, chunk, base))) return null;
    for (let at = chunk.indexOf(MAGIC_BYTES); at !== -1 && at < CHUNK_BYTES; at = chunk.indexOf(MAGIC_BYTES, at + 1)) {
      if (base + at + JOURNAL_HEADER_BYTES > size) return null;
      if (!(await readExactly(handle, header, base + at))) return null;
      if (typeof decodeHeader(header, sessionId) !== 'string') return base + at;
    }
  }
  return null;
}

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
      // Per append, not shared: appends of different sessions run concurrently.
      const staging = new Uint8Array(Math.min(CHUNK_BYTES, payload.length));
      await handle.write(new Uint8Array(JOURNAL_HEADER_BYTES), start);
      const hash = createHash('sha256');
      for (let at = 0; at < payload.length; at += CHUNK_BYTES) {
        const source = payload.subarray(at, Math.min(at + CHUNK_BYTES, payload.length));
        const chunk = staging.subarray(0, source.length);
        chunk.set(source);
        hash.update(chunk);
        await handle.write(chunk, start + JOURNAL_HEADER_BYTES + at);
      }
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
