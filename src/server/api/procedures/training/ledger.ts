// The exactly-once audit of a session's ledger: applied rounds, updates and samples agree, nothing twice.
import { ledgerReport } from '../../dto';
import { sessionIdInput } from '../../inputs';
import { defineQuery } from '../../procedure';

export const ledger = defineQuery({
  input: sessionIdInput,
  output: ledgerReport,
  rest: { method: 'GET', path: '/api/sessions/:sessionId/ledger' },
  // The coordinator answers NOT_FOUND itself for an unknown session.
  resolve: ({ ctx, input }) => ctx.control.ledger(input.sessionId),
});
