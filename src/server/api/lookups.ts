// Lookups several procedures share: a missing resource is a NOT_FOUND with its id in the message.
import { RequestError } from '../../protocol/errors';
import type { SessionSnapshot } from '../core/types';
import type { TrainingControl } from '../services/training-control';

export async function requireSession(control: TrainingControl, id: number): Promise<SessionSnapshot> {
  const session = await control.session(id);
  if (!session) throw new RequestError('NOT_FOUND', `session ${id} does not exist`);
  return session;
}
