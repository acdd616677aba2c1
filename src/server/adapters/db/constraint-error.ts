// The coded error of a constraint failure: one wording for Prisma's connection (client.ts, translate) and the direct
// one the round's commit runs on (direct-sql.ts).
import { HyperGpuError } from '../../../protocol/errors';

export type ConstraintKind = 'unique' | 'foreignKey' | 'notFound';

/** `target` names the unique key ('unique on sessionId, round'). */
export function constraintError(kind: ConstraintKind, context: string, cause: unknown, target = 'unique constraint'): HyperGpuError {
  const wrapped =
    kind === 'unique'
      ? new HyperGpuError('CONFLICT', `${context}: already recorded (${target})`)
      : kind === 'foreignKey'
        ? new HyperGpuError('NOT_FOUND', `${context}: refers to a session, round or node that does not exist`)
        : new HyperGpuError('NOT_FOUND', `${context}: not found`);
  wrapped.cause = cause;
  return wrapped;
}

