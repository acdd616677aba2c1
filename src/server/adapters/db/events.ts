// The session timeline (dashboard): append-only rows, read newest-first by id and returned oldest first.

import type { TrainingRepository } from '../../core/ports';
import type { SessionEvent } from '../../core/types';
import type { Prisma } from './generated/client';
import { corrupt, ms, storedJson, translate, type Db } from './client';
import { checkEvent, isSessionEventKind } from './record-rules';

export const eventSelect = {
  sessionId: true,
  at: true,
  round: true,
  kind: true,
  message: true,
  nodeId: true,
  detail: true,
} as const satisfies Prisma.SessionEventSelect;

type EventRow = Prisma.SessionEventGetPayload<{ select: typeof eventSelect }>;

export function toEvent(row: EventRow): SessionEvent {
  if (!isSessionEventKind(row.kind)) {
    corrupt(`session ${row.sessionId} has an event of kind ${row.kind} in the database, which is not a session event kind`);
  }
  return {
    sessionId: row.sessionId,
    at: ms(row.at),
    round: row.round,
    kind: row.kind,
    message: row.message,
    nodeId: row.nodeId,
    detail: row.detail === null ? null : (storedJson(`session ${row.sessionId} event ${row.kind} detail`, row.detail) as SessionEvent['detail']),
  };
}

type EventMethods = Pick<TrainingRepository, 'recordEvent' | 'listEvents'>;

export function createEventStore({ prisma, serial }: Db): EventMethods {
  return {
    async recordEvent(event) {
      checkEvent(event);
      await serial(() =>
        prisma.sessionEvent
          .create({
            data: {
              sessionId: event.sessionId,
              at: new Date(event.at),
              round: event.round,
              kind: event.kind,
              message: event.message,
              nodeId: event.nodeId,
              detail: event.detail === null ? null : JSON.stringify(event.detail),
            },
            select: { id: true },
          })
          .catch((error: unknown) => translate(error, `session ${event.sessionId} event ${event.kind}`)),
      );
    },

    async listEvents(sessionId, limit) {
      return serial(async () => {
        // The newest `limit` events, returned oldest first; id order is recording order.
        const rows = await prisma.sessionEvent.findMany({
          where: { sessionId },
          orderBy: { id: 'desc' },
          take: Math.max(0, limit),
          select: eventSelect,
        });
        return rows.reverse().map(toEvent);
      });
    },
  };
}
