// The outbox payload rules on their own: what a writer stores is what a reader gets back, for every event kind,
// and a damaged payload is a coded CORRUPT_RECORD naming its row rather than a crash inside a later fold.
import { describe, expect, it } from 'vitest';
import { EMPTY_DURABLE, evolveAll, type CommittedEvent } from '../../src/server/core/engine/committed';
import { isCommittedEventKind, readOutboxRow, storedOutboxEvents } from '../../src/server/adapters/db/outbox-rules';
import { credited, metricOf, roundCommitted, roundOf, started, stateChanged } from '../support/repository-conformance';

const round = roundOf(1, 1, { cursor: { epoch: 1, position: 64, pending: [{ epoch: 0, start: 59_936, count: 64 }] } });
const events: CommittedEvent[] = [
  started(1),
  roundCommitted(round, metricOf(1, { testLoss: 0.3, testAccuracy: 0.9 })),
  credited(1, 1, 4, 'applied', 64),
  credited(1, 1, 5, 'rejected', 0),
  { kind: 'epoch-closed', sessionId: 1, epoch: 0, round: 1 },
  stateChanged(1, 'completed', 5000),
  stateChanged(1, 'running', 6000),
];

function readBack(event: CommittedEvent, id = 1): CommittedEvent {
  const [stored] = storedOutboxEvents([event]);
  return readOutboxRow(id, stored.sessionId, stored.kind, JSON.stringify(stored));
}

describe('outbox rules', () => {
  it('reads back every kind exactly as written, so folding what was read gives the same durable state', () => {
    expect(new Set(events.map((e) => e.kind)).size).toBe(5);
    const read = events.map((e) => readBack(e));
    expect(read).toStrictEqual(events);
    expect(evolveAll(EMPTY_DURABLE, read)).toEqual(evolveAll(EMPTY_DURABLE, events));
  });

  it('knows the committed event kinds', () => {
    expect(events.every((e) => isCommittedEventKind(e.kind))).toBe(true);
    expect(isCommittedEventKind('session-paused')).toBe(false);
    expect(isCommittedEventKind(undefined)).toBe(false);
  });

  it('names the place of a bad event in the list when writing', () => {
    expect(() => storedOutboxEvents([events[0], { ...credited(1, 1, 4, 'applied', 64), samples: 1.5 }])).toThrow(
      expect.objectContaining({ code: 'BAD_REQUEST', message: 'outbox event 1: node-credited.samples must be a 32-bit integer, got 1.5' }),
    );
    expect(storedOutboxEvents(undefined)).toEqual([]);
  });

  it('reports a damaged payload as CORRUPT_RECORD with the row id and the field', () => {
    const payload = JSON.parse(JSON.stringify(events[1])) as Record<string, unknown>;
    delete (payload.metric as Record<string, unknown>).nodes;
    expect(() => readOutboxRow(77, 1, 'round-committed', JSON.stringify(payload))).toThrow(
      expect.objectContaining({
        code: 'CORRUPT_RECORD',
        message: 'outbox event 77 is corrupt: round-committed.metric.nodes must be a 32-bit integer, got undefined',
      }),
    );
    expect(() => readOutboxRow(78, 1, 'session-started', JSON.stringify({ ...started(1), config: { ...started(1).config, optimizer: null } }))).toThrow(
      expect.objectContaining({ code: 'CORRUPT_RECORD', message: 'outbox event 78 is corrupt: session-started.config.optimizer must be an object' }),
    );
    expect(() => readOutboxRow(79, null, 'epoch-closed', JSON.stringify(events[4]))).toThrow(/outbox event 79 is corrupt: sessionId column says null/);
  });
});
