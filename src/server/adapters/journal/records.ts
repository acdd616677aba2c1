// The record format of the update journal (update-journal.ts) and how a journal blob is read back: encoding and
// decoding record headers, hashing payloads, and scanning a blob to tell a torn tail from corruption.
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
import type { BlobReader, JournalEntry } from '../../core/ports';

export const JOURNAL_MAGIC = 'HGJR';
export const JOURNAL_VERSION = 1;
export const JOURNAL_HEADER_BYTES = 64;
const MAGIC_BYTES = Buffer.from(JOURNAL_MAGIC, 'latin1');
// Big enough that syscalls and hash updates are cheap per byte, small enough not to hold the event loop long.
export const CHUNK_BYTES = 8 * 1024 * 1024;
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

export interface RecordHeader {
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

export function encodeHeader(entry: JournalEntry, payloadSha256: Buffer): Buffer {
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

export async function readExactly(handle: BlobReader, into: Uint8Array, position: number): Promise<boolean> {
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
export async function scanFile(handle: BlobReader, file: string, sessionId: number, verify: (header: RecordHeader) => boolean): Promise<ScanResult> {
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

export function payloadCorrupt(file: string, index: number, offset: number, header: RecordHeader): JournalCorruptError {
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
