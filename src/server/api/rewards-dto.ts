// Rewards DTOs: amounts in base units as decimal strings (JSON has no bigint, and a float would lose digits).
import { z } from 'zod';
import { RequestError } from '../../protocol/errors';
import type { RewardsService } from '../services/rewards';
import type { ApiContext } from './procedure';

export const units = z.string().regex(/^\d+$/, 'base units: a non-negative integer as a decimal string');
export const addressInput = z.object({ address: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'address must be 0x and 40 hex digits') });
const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/);

export const chainSessionDto = z.object({
  chainId: z.number().int().nullable(),
  contractAddress: z.string().nullable(),
  rpcUrl: z.string().nullable(),
  mode: z.enum(['anvil', 'rpc']).nullable(),
  /** The contract owner: its wallet may sign in as the operator (POST /api/auth/siwe). */
  owner: z.string().nullable(),
  sessionId: z.number().int().nullable(),
  lastSettledEpoch: z.number().int().nullable(),
  lastSettledSeq: z.number().int().nullable(),
  pendingSettlements: z.number().int(),
  totals: z.object({ ledger: units, funded: units.nullable(), committed: units.nullable(), claimed: units.nullable() }),
  chainError: z.string().nullable(),
});

export const addressRewardsDto = z.object({
  address: z.string(),
  earned: units,
  committed: units,
  claimed: units.nullable(),
  claimable: units.nullable(),
  claim: z.object({ seq: z.number().int(), cumulativeAmount: units, proof: z.array(hex32) }).nullable(),
  epochs: z.array(
    z.object({
      seq: z.number().int(),
      sessionId: z.number().int(),
      epoch: z.number().int(),
      nodeName: z.string(),
      samples: z.number().int(),
      amount: units,
      status: z.string(),
      reason: z.string().nullable(),
    }),
  ),
});

export const proofDto = z.object({ seq: z.number().int(), root: hex32, cumulativeAmount: units, proof: z.array(hex32) });

export const leaderboardDto = z.array(
  z.object({ nodeId: z.number().int(), nodeName: z.string(), address: z.string().nullable(), samples: z.number().int(), amount: units, forfeitedSamples: z.number().int() }),
);

export function rewardsOf(ctx: ApiContext): RewardsService {
  if (!ctx.rewards) throw new RequestError('NOT_FOUND', 'this server runs without rewards');
  return ctx.rewards;
}

export const str = (v: bigint | null): string | null => (v === null ? null : v.toString());
