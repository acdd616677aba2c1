// The write-ahead journal of applied updates: behaviour shared by the file journal and the in-memory fake,
// then what only files have (torn tails after a crash, corruption in the middle, compaction by rename, reopening
// after a restart) and the cost of a durable append.

import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createFileBlobStore } from '../../src/server/adapters/blob-store';
import {
  JOURNAL_HEADER_BYTES,
  JournalCorruptError,
  createUpdateJournal,
  journalBytes,
  journalKey,
} from '../../src/server/adapters/journal/update-journal';
import { CHUNK_BYTES } from '../../src/server/adapters/journal/records';
import type { JournalEntry, UpdateJournal } from '../../src/server/core/ports';
import { withFaults } from '../support/fake-blob-store';
import { createFakeJournal } from '../support/fake-journal';

const root = mkdtempSync(join(tmpdir(), 'hypergpu-journal-'));
let dirs = 0;
const freshDir = () => join(root, `journal-${++dirs}`, 'journal');

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The production wiring (runtime.ts): the journal on a file blob store. */
const createFileUpdateJournal = (dir: string) => createUpdateJournal(createFileBlobStore(dir));
const journalFile = (dir: string, sessionId: number) => createFileBlobStore(dir).locate(journalKey(sessionId));

/** Deterministic values, including the ones a float file must keep bit for bit (-0, Infinity, NaN, subnormals). */
function updateOf(length: number, seed: number): Float32Array {
  const a = new Float32Array(length);
  for (let i = 0; i < length; i++) a[i] = Math.sin((i + 1) * seed) * 10 ** ((i % 7) - 3);
  if (length > 4) {
    a[0] = -0;
    a[1] = Number.POSITIVE_INFINITY;
    a[2] = 1.401298464324817e-45;
    a[3] = Number.NaN;
  }
  return a;
}

function entryOf(sessionId: number, modelVersion: number, length = 257, seed = modelVersion): JournalEntry {
  return { sessionId, round: modelVersion + 2, modelVersion, samples: 64 * modelVersion, update: updateOf(length, seed + sessionId / 10) };
}

const bytesOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Equal field by field and bit for bit (toEqual would call two NaNs equal whatever their bits). */
function expectEntries(actual: JournalEntry[], expected: JournalEntry[]): void {
  expect(actual.map(({ update, ...rest }) => ({ ...rest, length: update.length }))).toEqual(
    expected.map(({ update, ...rest }) => ({ ...rest, length: update.length })),
  );
  actual.forEach((entry, i) => {
    expect(entry.update).toBeInstanceOf(Float32Array);
    expect(bytesOf(entry.update).equals(bytesOf(expected[i].update))).toBe(true);
  });
}

const recordBytes = (length: number) => JOURNAL_HEADER_BYTES + 4 * length;

function describeJournalBehaviour(name: string, makeJournal: () => UpdateJournal): void {
  describe(`UpdateJournal behaviour: ${name}`, () => {
    it('returns nothing for a session without entries', async () => {
      const journal = makeJournal();
      expect(await journal.read(1, 0)).toEqual([]);
      await journal.compact(1, 10);
      expect(await journal.read(1, 0)).toEqual([]);
    });

    it('round-trips entries exactly, in order', async () => {
      const journal = makeJournal();
      const entries = [entryOf(1, 1), entryOf(1, 2, 1), entryOf(1, 3, 0), entryOf(1, 7, 1000)];
      for (const e of entries) await journal.append(e);
      expectEntries(await journal.read(1, 0), entries);
    });

    it('round-trips an entry of several chunks (hashing of one chunk overlaps the write of the last)', async () => {
      const journal = makeJournal();
      // 5.5 chunks of CHUNK_BYTES: both staging buffers are reused, and the last chunk is a short one.
      const entry = entryOf(1, 1, (CHUNK_BYTES * 5.5) / 4 + 3);
      await journal.append(entry);
      await journal.append(entryOf(1, 2, 9));
      expectEntries(await journal.read(1, 0), [entry, entryOf(1, 2, 9)]);
    });

    it('returns only entries above afterVersion', async () => {
      const journal = makeJournal();
      const entries = [1, 2, 3, 4, 5].map((v) => entryOf(1, v));
      for (const e of entries) await journal.append(e);
      expectEntries(await journal.read(1, 3), entries.slice(3));
      expectEntries(await journal.read(1, 5), []);
      expectEntries(await journal.read(1, -1), entries);
    });

    it('keeps sessions apart', async () => {
      const journal = makeJournal();
      await Promise.all([journal.append(entryOf(1, 1)), journal.append(entryOf(2, 1)), journal.append(entryOf(2, 2))]);
      expectEntries(await journal.read(1, 0), [entryOf(1, 1)]);
      expectEntries(await journal.read(2, 0), [entryOf(2, 1), entryOf(2, 2)]);
    });

    it('stores a copy: changing the array after append resolves or the one read changes nothing', async () => {
      const journal = makeJournal();
      const entry = entryOf(1, 1);
      const original = entry.update.slice();
      await journal.append(entry);
      entry.update.fill(42);
      const [read] = await journal.read(1, 0);
      expect(bytesOf(read.update).equals(bytesOf(original))).toBe(true);
      read.update.fill(7);
      expect(bytesOf((await journal.read(1, 0))[0].update).equals(bytesOf(original))).toBe(true);
    });

    it('accepts an update that is a view into a larger buffer', async () => {
      const journal = makeJournal();
      const backing = updateOf(1000, 3);
      const entry: JournalEntry = { sessionId: 1, round: 1, modelVersion: 1, samples: 64, update: backing.subarray(100, 300) };
      await journal.append(entry);
      expectEntries(await journal.read(1, 0), [entry]);
    });

    it('supersedes: an append at or below the last version drops the entries from that version on', async () => {
      const journal = makeJournal();
      const entries = [1, 2, 3, 4].map((v) => entryOf(1, v));
      for (const e of entries) await journal.append(e);
      // After a crash the ledger said version 2; the coordinator redoes round 3 with other updates.
      const redo = entryOf(1, 3, 257, 99);
      await journal.append(redo);
      expectEntries(await journal.read(1, 0), [entries[0], entries[1], redo]);
      await journal.append(entryOf(1, 4, 10, 5));
      expectEntries(await journal.read(1, 2), [redo, entryOf(1, 4, 10, 5)]);
    });

    it('compacts: drops entries at or below the version and keeps the later ones, appends continue', async () => {
      const journal = makeJournal();
      const entries = [1, 2, 3, 4, 5].map((v) => entryOf(1, v));
      for (const e of entries) await journal.append(e);
      await journal.append(entryOf(2, 1));
      await journal.compact(1, 3);
      expectEntries(await journal.read(1, 0), entries.slice(3));
      await journal.append(entryOf(1, 6));
      expectEntries(await journal.read(1, 0), [...entries.slice(3), entryOf(1, 6)]);
      await journal.compact(1, 2); // nothing at or below 2 is left: no change
      expectEntries(await journal.read(1, 0), [...entries.slice(3), entryOf(1, 6)]);
      await journal.compact(1, 100);
      expectEntries(await journal.read(1, 0), []);
      expectEntries(await journal.read(2, 0), [entryOf(2, 1)]);
      await journal.append(entryOf(1, 101));
      expectEntries(await journal.read(1, 0), [entryOf(1, 101)]);
    });

    it('lands many appends fired without waiting, in call order', async () => {
      const journal = makeJournal();
      const entries = Array.from({ length: 200 }, (_, i) => entryOf(3, i + 1, 500));
      await Promise.all(entries.map((e) => journal.append(e)));
      expectEntries(await journal.read(3, 0), entries);
      expectEntries(await journal.read(3, 150), entries.slice(150));
    });

    it('refuses entries it cannot store', async () => {
      const journal = makeJournal();
      await expect(journal.append({ ...entryOf(1, 1), modelVersion: -1 })).rejects.toThrow(RangeError);
      await expect(journal.append({ ...entryOf(1, 1), round: 1.5 })).rejects.toThrow(RangeError);
      await expect(journal.append({ ...entryOf(1, 1), samples: 2 ** 32 })).rejects.toThrow(RangeError);
      await expect(journal.append({ ...entryOf(1, 1), update: [1, 2] as unknown as Float32Array })).rejects.toThrow(TypeError);
      expect(await journal.read(1, 0)).toEqual([]);
    });
  });
}

describeJournalBehaviour('file', () => createFileUpdateJournal(freshDir()));
describeJournalBehaviour('in-memory fake', () => createFakeJournal());

describe('fake journal helpers', () => {
  it('injects an append failure once, storing nothing', async () => {
    const journal = createFakeJournal();
    journal.failNextAppend(new Error('disk full'));
    await expect(journal.append(entryOf(1, 1))).rejects.toThrow('disk full');
    await journal.append(entryOf(1, 1));
    expectEntries(journal.entries(1), [entryOf(1, 1)]);
    expect(journal.calls.append).toBe(2);
  });
});

describe('file journal on disk', () => {
  const length = 257;
  const size = recordBytes(length);

  async function journalWith(versions: number[]): Promise<{ dir: string; file: string; entries: JournalEntry[] }> {
    const dir = freshDir();
    const journal = createFileUpdateJournal(dir);
    const entries = versions.map((v) => entryOf(1, v, length));
    for (const e of entries) await journal.append(e);
    return { dir, file: journalFile(dir, 1), entries };
  }

  function flipByte(file: string, at: number): void {
    const bytes = readFileSync(file);
    bytes[at] ^= 0x5a;
    writeFileSync(file, bytes);
  }

  it('writes one file per session of header plus float32 payload per record, creating the folder', async () => {
    const { dir, file } = await journalWith([1, 2, 3]);
    expect(file).toBe(join(dir, 'session-1.journal'));
    expect(statSync(file).size).toBe(3 * size);
    expect(await journalBytes(createFileBlobStore(dir), 1)).toBe(3 * size);
    expect(await journalBytes(createFileBlobStore(dir), 2)).toBe(0);
    expect(readFileSync(file).subarray(0, 4).toString('latin1')).toBe('HGJR');
  });

  it('reads what another instance wrote, and keeps appending after a restart', async () => {
    const { dir, entries } = await journalWith([1, 2]);
    const restarted = createFileUpdateJournal(dir);
    expectEntries(await restarted.read(1, 0), entries);
    await restarted.append(entryOf(1, 3, length));
    expectEntries(await createFileUpdateJournal(dir).read(1, 0), [...entries, entryOf(1, 3, length)]);
  });

  describe('a torn last record (crash mid-append) is ignored', () => {
    const cuts: Array<[string, (file: string) => void]> = [
      ['header cut short', (file) => truncateSync(file, 2 * size + 10)],
      ['header complete, payload cut short', (file) => truncateSync(file, 2 * size + JOURNAL_HEADER_BYTES + 100)],
      ['payload one byte short', (file) => truncateSync(file, 3 * size - 1)],
      ['full length, payload damaged', (file) => flipByte(file, 3 * size - 5)],
      ['full length, header never written (zeros)', (file) => {
        const bytes = readFileSync(file);
        bytes.fill(0, 2 * size, 2 * size + JOURNAL_HEADER_BYTES);
        writeFileSync(file, bytes);
      }],
      ['zeros after the record (size extended, data never written)', (file) => {
        truncateSync(file, 2 * size + 30);
        appendFileSync(file, Buffer.alloc(5000));
      }],
    ];
    for (const [label, damage] of cuts) {
      it(label, async () => {
        const { dir, file, entries } = await journalWith([1, 2, 3]);
        damage(file);
        const restarted = createFileUpdateJournal(dir);
        expectEntries(await restarted.read(1, 0), entries.slice(0, 2));
        // The next append cuts the torn tail off first, so it does not turn into damage in the middle.
        const redo = entryOf(1, 3, length, 77);
        await restarted.append(redo);
        expect(statSync(file).size).toBe(3 * size);
        expectEntries(await createFileUpdateJournal(dir).read(1, 0), [...entries.slice(0, 2), redo]);
      });
    }

    it('at every cut point and every damaged byte of the last record (small records, exhaustively)', async () => {
      const small = 8;
      const bytes = recordBytes(small);
      const dir = freshDir();
      const writer = createFileUpdateJournal(dir);
      const entries = [1, 2, 3].map((v) => entryOf(1, v, small));
      for (const e of entries) await writer.append(e);
      const file = journalFile(dir, 1);
      const whole = readFileSync(file);
      const damaged: Buffer[] = [];
      for (let cut = 2 * bytes; cut < 3 * bytes; cut++) damaged.push(whole.subarray(0, cut));
      for (let at = 2 * bytes; at < 3 * bytes; at++) {
        const copy = Buffer.from(whole);
        copy[at] ^= 0x01;
        damaged.push(copy);
      }
      for (const content of damaged) {
        writeFileSync(file, content);
        const restarted = createFileUpdateJournal(dir);
        expectEntries(await restarted.read(1, 0), entries.slice(0, 2));
        await restarted.append(entries[2]);
        expect(readFileSync(file).equals(whole)).toBe(true);
      }
    });

    it('a journal whose only record is torn reads as empty', async () => {
      const { dir, file } = await journalWith([1]);
      truncateSync(file, 40);
      expect(await createFileUpdateJournal(dir).read(1, 0)).toEqual([]);
    });
  });

  describe('damage in the middle is refused with a clear error', () => {
    it('a payload byte of a middle record', async () => {
      const { dir, file } = await journalWith([1, 2, 3]);
      flipByte(file, size + JOURNAL_HEADER_BYTES + 17);
      const journal = createFileUpdateJournal(dir);
      const error = await journal.read(1, 0).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(JournalCorruptError);
      expect((error as JournalCorruptError).message).toMatch(/record 1 at byte \d+ \(model version 2\) fails its payload sha256/);
      expect((error as JournalCorruptError).offset).toBe(size);
      // Also when the damaged record is one the caller would skip, and on the next append and compaction.
      await expect(journal.read(1, 2)).rejects.toThrow(JournalCorruptError);
      await expect(journal.compact(1, 1)).rejects.toThrow(JournalCorruptError);
    });

    it('a header field of a middle record (the record length cannot be trusted)', async () => {
      const { dir, file } = await journalWith([1, 2, 3]);
      flipByte(file, size + 20); // paramCount of record 1
      const journal = createFileUpdateJournal(dir);
      await expect(journal.read(1, 0)).rejects.toThrow(/record 1 at byte \d+ is damaged \(header check mismatch\) and a valid record follows/);
      await expect(journal.append(entryOf(1, 4, length))).rejects.toThrow(JournalCorruptError);
      expect(statSync(file).size).toBe(3 * size);
    });

    it('any single damaged byte of a middle record (small records, exhaustively)', async () => {
      const small = 8;
      const bytes = recordBytes(small);
      const dir = freshDir();
      const writer = createFileUpdateJournal(dir);
      for (const v of [1, 2, 3]) await writer.append(entryOf(1, v, small));
      const file = journalFile(dir, 1);
      const whole = readFileSync(file);
      for (let at = bytes; at < 2 * bytes; at++) {
        const copy = Buffer.from(whole);
        copy[at] ^= 0x01;
        writeFileSync(file, copy);
        const journal = createFileUpdateJournal(dir);
        await expect(journal.read(1, 0), `byte ${at}`).rejects.toThrow(JournalCorruptError);
        await expect(journal.compact(1, 1), `byte ${at}`).rejects.toThrow(JournalCorruptError);
        // Appending hashes only the last payload (read checks them all), so it refuses header damage only.
        if (at < bytes + JOURNAL_HEADER_BYTES) {
          await expect(journal.append(entryOf(1, 4, small)), `byte ${at}`).rejects.toThrow(JournalCorruptError);
          expect(readFileSync(file).equals(copy)).toBe(true);
        }
      }
    });

    it('bytes lost from the middle', async () => {
      const { dir, file } = await journalWith([1, 2, 3]);
      const bytes = readFileSync(file);
      writeFileSync(file, Buffer.concat([bytes.subarray(0, size + 100), bytes.subarray(size + 200)]));
      await expect(createFileUpdateJournal(dir).read(1, 0)).rejects.toThrow(JournalCorruptError);
    });

    it('a record of another session', async () => {
      const { dir, file } = await journalWith([1, 2]);
      const other = createFileUpdateJournal(dir);
      await other.append(entryOf(2, 1, length));
      // Someone copied session 2's journal over session 1's tail.
      appendFileSync(file, readFileSync(journalFile(dir, 2)));
      appendFileSync(file, readFileSync(file).subarray(0, size));
      await expect(createFileUpdateJournal(dir).read(1, 0)).rejects.toThrow(/record of session 2/);
    });
  });

  describe('compaction', () => {
    it('rewrites the file with the later records only, and drops a torn tail', async () => {
      const { dir, file, entries } = await journalWith([1, 2, 3, 4]);
      truncateSync(file, 4 * size - 3);
      const journal = createFileUpdateJournal(dir);
      await journal.compact(1, 1);
      expect(statSync(file).size).toBe(2 * size);
      expectEntries(await journal.read(1, 0), entries.slice(1, 3));
    });

    it('a failed compaction leaves the journal as it was, and no temporary file behind', async () => {
      const { dir, file, entries } = await journalWith([1, 2, 3]);
      const files = withFaults(createFileBlobStore(dir));
      const journal = createUpdateJournal(files);
      // The new journal is written but cannot be committed (a full disk at fsync, say): the original must be untouched.
      files.failNext('commit', new Error('no space left (injected)'));
      await expect(journal.compact(1, 2)).rejects.toThrow('no space left (injected)');
      expectEntries(await journal.read(1, 0), entries);
      expect(statSync(file).size).toBe(3 * size);
      expect(readdirSync(dir)).toEqual(['session-1.journal']);
      await journal.append(entryOf(1, 4, length));
      await journal.compact(1, 2);
      expectEntries(await journal.read(1, 0), [entries[2], entryOf(1, 4, length)]);
    });

    it('removes the temporary file an older build left when it crashed mid-compaction', async () => {
      const { dir, file, entries } = await journalWith([1, 2, 3]);
      writeFileSync(`${file}.compact.tmp`, 'leftover of a crash');
      const journal = createFileUpdateJournal(dir);
      await journal.compact(1, 1);
      expectEntries(await journal.read(1, 0), entries.slice(1));
      expect(() => statSync(`${file}.compact.tmp`)).toThrow();
    });

    it('runs in call order with appends fired around it', async () => {
      const dir = freshDir();
      const journal = createFileUpdateJournal(dir);
      const calls: Promise<void>[] = [];
      for (let v = 1; v <= 20; v++) {
        calls.push(journal.append(entryOf(1, v, 64)));
        if (v % 5 === 0) calls.push(journal.compact(1, v - 2));
      }
      await Promise.all(calls);
      expectEntries(await journal.read(1, 0), [19, 20].map((v) => entryOf(1, v, 64)));
      expect(statSync(journalFile(dir, 1)).size).toBe(2 * recordBytes(64));
    });
  });

  it('measures a durable append (fsync included) of the MLP and of a 10M-parameter update', async () => {
    const dir = freshDir();
    const journal = createFileUpdateJournal(dir);
    const time = async (work: () => Promise<unknown>) => {
      const started = performance.now();
      await work();
      return performance.now() - started;
    };
    const summary = (times: number[]) => {
      const sorted = [...times].sort((a, b) => a - b);
      return { median: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1] };
    };

    const mlp = updateOf(109_386, 1);
    const mlpTimes: number[] = [];
    for (let v = 1; v <= 30; v++) mlpTimes.push(await time(() => journal.append({ sessionId: 1, round: v, modelVersion: v, samples: 640, update: mlp })));
    const mlpRead = await time(() => journal.read(1, 0));

    const big = updateOf(10_000_000, 2);
    const bigTimes: number[] = [];
    for (let v = 1; v <= 3; v++) bigTimes.push(await time(() => journal.append({ sessionId: 2, round: v, modelVersion: v, samples: 640, update: big })));
    let bigEntries: JournalEntry[] = [];
    const bigRead = await time(async () => {
      bigEntries = await journal.read(2, 2);
    });
    expect(bytesOf(bigEntries[0].update).equals(bytesOf(big))).toBe(true);
    const compactBig = await time(() => journal.compact(2, 1));

    const m = summary(mlpTimes);
    const b = summary(bigTimes);
    console.log(
      `journal append 109,386 floats (${((109_386 * 4) / 1e6).toFixed(2)} MB): median ${m.median.toFixed(1)} ms, max ${m.max.toFixed(1)} ms over 30; ` +
        `read 30 ${mlpRead.toFixed(1)} ms\n` +
        `journal append 10M floats (40 MB): median ${b.median.toFixed(0)} ms, max ${b.max.toFixed(0)} ms over 3 ` +
        `(${bigTimes.map((t) => t.toFixed(0)).join(', ')}); read 1 ${bigRead.toFixed(0)} ms; compact 3 -> 2 ${compactBig.toFixed(0)} ms`,
    );
    // Generous bounds: a round lasts seconds; these only catch a pathological regression.
    expect(m.median).toBeLessThan(500);
    expect(b.median).toBeLessThan(10_000);
  });
});
