// In-memory UpdateJournal for unit tests of the coordinator. Same rules as the file journal
// (src/server/adapters/journal/update-journal.ts): the same input checks, appends in call order, an append whose
// model version is not above the last one supersedes the entries from that version on, read returns copies of the
// entries above a version in order, compact drops the entries at or below a version.
// tests/integration/update-journal.test.ts runs the same behaviour tests against both.

import { checkJournalEntry } from '../../src/server/adapters/journal/update-journal';
import type { JournalEntry, UpdateJournal } from '../../src/server/core/ports';

export interface FakeJournal extends UpdateJournal {
  /** Test helper: every stored entry of a session, in order (copies). */
  entries(sessionId: number): JournalEntry[];
  /** Test helper: how many calls were made per method. */
  readonly calls: Record<string, number>;
  /** Test helper: the next append rejects with this error and stores nothing (a full disk, a failed fsync). */
  failNextAppend(error?: Error): void;
}

const copyOf = (entry: JournalEntry): JournalEntry => ({ ...entry, update: entry.update.slice() });

export function createFakeJournal(): FakeJournal {
  const sessions = new Map<number, JournalEntry[]>();
  const calls: Record<string, number> = {};
  let nextAppendError: Error | null = null;

  // Async like the real adapter, so callers that forget an await behave the same way in tests.
  function op<T>(name: string, work: () => T): Promise<T> {
    calls[name] = (calls[name] ?? 0) + 1;
    try {
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  return {
    calls,

    entries(sessionId) {
      return (sessions.get(sessionId) ?? []).map(copyOf);
    },

    failNextAppend(error = new Error('journal append failed (injected)')) {
      nextAppendError = error;
    },

    append(entry) {
      return op('append', () => {
        checkJournalEntry(entry);
        if (nextAppendError) {
          const error = nextAppendError;
          nextAppendError = null;
          throw error;
        }
        const kept = (sessions.get(entry.sessionId) ?? []).filter((e) => e.modelVersion < entry.modelVersion);
        // A copy now: the caller may reuse its array once append resolves, as it may with the file journal.
        kept.push(copyOf(entry));
        sessions.set(entry.sessionId, kept);
      });
    },

    read(sessionId, afterVersion) {
      return op('read', () => (sessions.get(sessionId) ?? []).filter((e) => e.modelVersion > afterVersion).map(copyOf));
    },

    compact(sessionId, version) {
      return op('compact', () => {
        const entries = sessions.get(sessionId);
        if (entries) sessions.set(sessionId, entries.filter((e) => e.modelVersion > version));
      });
    },
  };
}
