// The in-memory BlobStore: the shared conformance suite, its power-loss model, and what that model lets us prove
// without a disk: the update journal and the checkpoint store survive a power cut at every step of a write.
import { describe, expect, it } from 'vitest';
import { createCheckpointStore } from '../../src/server/adapters/checkpoint-store';
import { createUpdateJournal, journalKey } from '../../src/server/adapters/journal/update-journal';
import type { CheckpointPayload, JournalEntry } from '../../src/server/core/ports';
import { describeBlobStoreConformance } from '../support/blob-store-conformance';
import { createFakeBlobStore, withFaults, type CrashMode } from '../support/fake-blob-store';

describeBlobStoreConformance('in-memory fake', () => createFakeBlobStore());
describeBlobStoreConformance('in-memory fake behind withFaults', () => withFaults(createFakeBlobStore()));

const text = (s: string) => new TextEncoder().encode(s);

describe('fake blob store: power loss', () => {
  it('keeps what put, commit and delete made durable, and loses unsynced updater writes', async () => {
    const store = createFakeBlobStore();
    await store.put('put', text('p'));
    const writer = await store.createWriter();
    await writer.write(text('w'));
    await writer.commit('committed');
    const staged = await store.createWriter();
    await staged.write(text('never committed'));
    await store.put('deleted', text('d'));
    await store.delete('deleted');

    const synced = await store.openUpdater('synced');
    await synced.write(text('abc'), 0);
    await synced.sync();
    await synced.write(text('def'), 3); // not synced
    const unsynced = await store.openUpdater('unsynced'); // created, never synced: its name is not durable
    await unsynced.write(text('x'), 0);

    store.crash();
    expect(store.crashes).toBe(1);
    expect(await store.list()).toEqual(['committed', 'put', 'synced']);
    expect(await store.get('synced')).toEqual(text('abc'));
    // Handles from before the cut are dead, as the process that held them would be.
    await expect(synced.write(text('z'), 0)).rejects.toThrow(/power cut/);
    await expect(staged.commit('late')).rejects.toThrow(/power cut/);
    expect(await store.list()).toEqual(['committed', 'put', 'synced']);
  });

  it("'keep-all' keeps every write, synced or not", async () => {
    const store = createFakeBlobStore();
    const u = await store.openUpdater('u');
    await u.write(text('kept'), 0);
    store.crash('keep-all');
    expect(await store.get('u')).toEqual(text('kept'));
    store.crash(); // and what survived is durable from then on
    expect(await store.get('u')).toEqual(text('kept'));
  });

  it('powerCutAfter(n) fails the (n+1)th mutating operation and crashes', async () => {
    const store = createFakeBlobStore();
    store.powerCutAfter(1);
    await store.put('a', text('a'));
    await store.get('a'); // reads do not count
    await expect(store.put('b', text('b'))).rejects.toThrow(/power cut/);
    expect(store.crashes).toBe(1);
    expect(await store.list()).toEqual(['a']);
    await store.put('c', text('c')); // a restarted process uses the store normally
    expect(store.calls.put).toBe(3);
  });

  it('withFaults fails one chosen operation once, changing nothing', async () => {
    const store = withFaults(createFakeBlobStore());
    store.failNext('sync', new Error('EIO'));
    const u = await store.openUpdater('k');
    await u.write(text('x'), 0);
    await expect(u.sync()).rejects.toThrow('EIO');
    await u.sync();
    expect(await store.get('k')).toEqual(text('x'));
  });
});

// ------------------------------------------------------------------ the journal and checkpoints under power cuts

function updateOf(length: number, seed: number): Float32Array {
  return Float32Array.from({ length }, (_, i) => Math.sin((i + 1) * seed));
}

const entryOf = (modelVersion: number, seed = modelVersion, length = 300): JournalEntry => ({
  sessionId: 1,
  round: modelVersion,
  modelVersion,
  samples: 64,
  update: updateOf(length, seed),
});

const bitsOf = (entries: JournalEntry[]) => entries.map((e) => ({ ...e, update: Array.from(new Uint32Array(e.update.buffer, e.update.byteOffset, e.update.length)) }));

/**
 * Runs `attempt` with a power cut before its 1st, 2nd, ... mutating operation until one run finishes before the
 * cut; returns how many cut points there were.
 */
async function atEveryCut(mode: CrashMode, attempt: (store: ReturnType<typeof createFakeBlobStore>, cut: () => void) => Promise<void>): Promise<number> {
  for (let k = 0; k < 1000; k++) {
    const store = createFakeBlobStore();
    await attempt(store, () => store.powerCutAfter(k, mode));
    if (store.crashes === 0) return k;
  }
  throw new Error('the operation never finished before the cut');
}

describe('update journal on the fake store, power cut with any subset of the unsynced writes on disk', () => {
  type Journal = ReturnType<typeof createUpdateJournal>;
  /**
   * For every cut point of `action` and many seeds: after the cut, a restarted journal reads one of `allowed`,
   * and redoing version 3 then gives exactly the entries below 3 it read, then the redo (the supersede rule).
   */
  async function survivesEveryCut(setup: (journal: Journal) => Promise<void>, action: (journal: Journal) => Promise<unknown>, allowed: JournalEntry[][]): Promise<number> {
    const redo = entryOf(3, 99);
    let checked = 0;
    for (let k = 0; k < 100; k++) {
      let finished = false;
      for (let seed = 1; seed <= 24 && !finished; seed++) {
        const store = createFakeBlobStore();
        await setup(createUpdateJournal(store));
        // A restarted coordinator acts, so its first append scans the journal and cuts nothing it should keep.
        store.powerCutAfter(k, 'subset', seed);
        await action(createUpdateJournal(store)).catch(() => undefined);
        if (store.crashes === 0) {
          finished = true;
          break;
        }
        const seen = await createUpdateJournal(store).read(1, 0);
        expect(allowed.map(bitsOf), `cut ${k}, seed ${seed}`).toContainEqual(bitsOf(seen));
        const restarted = createUpdateJournal(store);
        await restarted.append(redo);
        const expected = [...seen.filter((e) => e.modelVersion < 3), redo];
        expect(bitsOf(await restarted.read(1, 0)), `cut ${k}, seed ${seed}`).toEqual(bitsOf(expected));
        checked++;
      }
      if (finished) return checked;
    }
    throw new Error('the action never finished before the cut');
  }

  const [e1, e2, e3, e4, e5] = [1, 2, 3, 4, 5].map((v) => entryOf(v));
  const appendAll = (entries: JournalEntry[]) => async (journal: Journal) => {
    for (const e of entries) await journal.append(e);
  };

  it('a plain append', async () => {
    expect(await survivesEveryCut(appendAll([e1, e2]), (j) => j.append(e3), [[e1, e2], [e1, e2, e3]])).toBeGreaterThan(50);
  });

  it('an append that supersedes later entries never brings a superseded one back', async () => {
    // Versions 3 and 4 are leftovers the ledger never recorded; the redo of 3 drops them.
    const redo3 = entryOf(3, 77);
    const checked = await survivesEveryCut(appendAll([e1, e2, e3, e4]), (j) => j.append(redo3), [[e1, e2, e3, e4], [e1, e2], [e1, e2, redo3]]);
    expect(checked).toBeGreaterThan(50);
  });

  it('a compaction', async () => {
    const checked = await survivesEveryCut(appendAll([e1, e2, e3, e4, e5]), (j) => j.compact(1, 1), [[e1, e2, e3, e4, e5], [e2, e3, e4, e5]]);
    expect(checked).toBeGreaterThan(20);
  });
});

for (const mode of ['lose-unsynced', 'keep-all'] as const) {
  describe(`update journal on the fake store, power cut at every step (${mode})`, () => {
    it('an append that resolved survives; the one cut off is absent or whole; a redo cut again still recovers', async () => {
      const base = [entryOf(1), entryOf(2)];
      const third = entryOf(3);
      const redo = entryOf(3, 99);
      const appendCut = (journal: ReturnType<typeof createUpdateJournal>, entry: JournalEntry) =>
        journal.append(entry).then(() => 'resolved' as const, () => 'rejected' as const);
      let pairs = 0;
      // k1: where the first cut falls in the append of version 3; k2: where a second cut falls in the redo.
      for (let k1 = 0; ; k1++) {
        const probe = createFakeBlobStore();
        const journal = createUpdateJournal(probe);
        for (const e of base) await journal.append(e);
        probe.powerCutAfter(k1, mode);
        if ((await appendCut(journal, third)) === 'resolved') {
          expect(probe.crashes).toBe(0);
          expect(k1).toBeGreaterThanOrEqual(5); // openUpdater, three writes and a sync
          break;
        }
        for (let k2 = 0; ; k2++) {
          pairs++;
          const store = createFakeBlobStore();
          const first = createUpdateJournal(store);
          for (const e of base) await first.append(e);
          store.powerCutAfter(k1, mode);
          expect(await appendCut(first, third)).toBe('rejected');
          // The restarted coordinator finds the two entries that resolved, plus the cut-off one only if whole.
          const afterCut = bitsOf(await createUpdateJournal(store).read(1, 0));
          expect([bitsOf(base), bitsOf([...base, third])]).toContainEqual(afterCut);
          // Its ledger says version 2, so it redoes version 3, and power fails again at step k2 of that.
          const second = createUpdateJournal(store);
          store.powerCutAfter(k2, mode);
          const redone = await appendCut(second, redo);
          const afterRedo = bitsOf(await createUpdateJournal(store).read(1, 0));
          if (redone === 'resolved') {
            expect(store.crashes).toBe(1);
            expect(afterRedo).toEqual(bitsOf([...base, redo]));
            break;
          }
          expect([bitsOf(base), bitsOf([...base, third]), bitsOf([...base, redo])]).toContainEqual(afterRedo);
          // A third start redoes it once more, uncut: exactly the two entries and the redo.
          await createUpdateJournal(store).append(redo);
          expect(bitsOf(await createUpdateJournal(store).read(1, 0))).toEqual(bitsOf([...base, redo]));
        }
      }
      expect(pairs).toBeGreaterThan(10);
    });

    it('a compaction cut at any step leaves the old journal or the new one, never less', async () => {
      const entries = [1, 2, 3, 4, 5].map((v) => entryOf(v));
      const cuts = await atEveryCut(mode, async (store, cut) => {
        const journal = createUpdateJournal(store);
        for (const e of entries) await journal.append(e);
        cut();
        await journal.compact(1, 3).catch(() => undefined);
        const seen = bitsOf(await createUpdateJournal(store).read(1, 0));
        if (store.crashes === 0) expect(seen).toEqual(bitsOf(entries.slice(3)));
        else expect([bitsOf(entries), bitsOf(entries.slice(3))]).toContainEqual(seen);
        // Nothing but the journal is left under a key.
        expect(await store.list()).toEqual([journalKey(1)]);
      });
      expect(cuts).toBeGreaterThanOrEqual(3);
    });
  });

  describe(`checkpoint store on the fake store, power cut at every step (${mode})`, () => {
    it('a checkpoint is readable whole under its hash or absent; an earlier one stays readable', async () => {
      const payload = (seed: number): CheckpointPayload => ({
        sessionId: 1,
        round: seed,
        modelVersion: seed,
        params: updateOf(5000, seed),
        optimizerState: [updateOf(5000, seed + 0.5)],
        optimizerStep: seed,
      });
      const cuts = await atEveryCut(mode, async (store, cut) => {
        const checkpoints = createCheckpointStore(store);
        const first = await checkpoints.write(payload(1));
        cut();
        const second = await checkpoints.write(payload(2)).catch(() => null);
        expect((await checkpoints.read(first.path, first.sha256)).round).toBe(1);
        const keys = await store.list();
        expect(keys).toContain(`${first.sha256}.ckpt`);
        if (second) {
          expect((await checkpoints.read(second.path, second.sha256)).round).toBe(2);
        } else {
          // Whatever made it under a key is a whole checkpoint whose name is its hash.
          for (const key of keys) {
            const sha = key.replace(/\.ckpt$/, '');
            await expect(checkpoints.read(store.locate(key), sha)).resolves.toBeTruthy();
          }
        }
        expect(store.openWriters()).toBe(0);
      });
      expect(cuts).toBeGreaterThanOrEqual(2);
    });
  });
}
