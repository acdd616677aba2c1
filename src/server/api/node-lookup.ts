// A node by what people type: its id, or its name as the table shows it. NOT_FOUND (404) for neither.
import { RequestError } from '../../protocol/errors';
import type { NodeSnapshot } from '../core/types';
import type { TrainingControl } from '../services/training-control';

export function requireNode(control: TrainingControl, key: number | string): NodeSnapshot {
  const asId = typeof key === 'number' ? key : /^\d+$/.test(key) ? Number(key) : null;
  const node = (asId !== null ? control.node(asId) : null) ?? (typeof key === 'string' ? (control.nodes().find((n) => n.name === key) ?? null) : null);
  if (!node) throw new RequestError('NOT_FOUND', typeof key === 'number' ? `node ${key} is not known to this coordinator` : `node ${JSON.stringify(key)} is not known to this coordinator (no node has that id or name)`);
  return node;
}
