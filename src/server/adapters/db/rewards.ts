// The rewards tables: node wallets, settlements and their entries. Amounts are bigint in the domain and decimal
// strings in SQLite (uint256 fits no integer column); addresses are stored lowercase.
import type { RewardsRepository, SettlementEntryRecord, SettlementRecord, SettlementStatus } from '../../core/rewards/ports';
import type { Db } from './client';
import { ms, msOrNull } from './client';

const settlementSelect = { seq: true, sessionId: true, epoch: true, root: true, total: true, status: true, txHash: true, createdAt: true, committedAt: true } as const;

type SettlementRow = { seq: number; sessionId: number; epoch: number; root: string; total: string; status: string; txHash: string | null; createdAt: Date; committedAt: Date | null };

function toSettlement(row: SettlementRow): SettlementRecord {
  return {
    seq: row.seq,
    sessionId: row.sessionId,
    epoch: row.epoch,
    root: row.root as `0x${string}`,
    total: BigInt(row.total),
    status: row.status as SettlementStatus,
    txHash: row.txHash,
    createdAt: ms(row.createdAt),
    committedAt: msOrNull(row.committedAt),
  };
}

const entrySelect = {
  nodeId: true,
  address: true,
  samples: true,
  amount: true,
  cumulative: true,
  reason: true,
  node: { select: { name: true } },
  settlement: { select: { seq: true } },
} as const;

type EntryRow = { nodeId: number; address: string | null; samples: number; amount: string; cumulative: string; reason: string | null; node: { name: string }; settlement: { seq: number } };

function toEntry(row: EntryRow): SettlementEntryRecord {
  return {
    seq: row.settlement.seq,
    nodeId: row.nodeId,
    nodeName: row.node.name,
    address: row.address,
    samples: row.samples,
    amount: BigInt(row.amount),
    cumulative: BigInt(row.cumulative),
    reason: row.reason,
  };
}

export function createRewardsStore({ prisma, serial }: Db): RewardsRepository {
  return {
    nodeWallet: (name) =>
      serial(async () => {
        const row = await prisma.node.findUnique({ where: { name }, select: { id: true, walletAddress: true, payoutAddress: true } });
        return row ? { nodeId: row.id, walletAddress: row.walletAddress, payoutAddress: row.payoutAddress } : null;
      }),

    bindNodeWallet: (nodeId, wallet, payout) =>
      serial(async () => {
        const w = wallet.toLowerCase();
        // Conditional: bound to nobody yet, or to this same wallet (which may change its payout address).
        const updated = await prisma.node.updateMany({
          where: { id: nodeId, OR: [{ walletAddress: null }, { walletAddress: w }] },
          data: { walletAddress: w, payoutAddress: payout.toLowerCase() },
        });
        return updated.count === 1;
      }),

    epochCredits: (sessionId, epoch) =>
      serial(async () => {
        const rows = await prisma.contribution.findMany({
          where: { sessionId, epoch, roundRow: { applied: true } },
          select: { nodeId: true, samples: true },
        });
        const byNode = new Map<number, number>();
        for (const row of rows) byNode.set(row.nodeId, (byNode.get(row.nodeId) ?? 0) + row.samples);
        return [...byNode.entries()].map(([nodeId, samples]) => ({ nodeId, samples }));
      }),

    payoutAddresses: (nodeIds) =>
      serial(async () => {
        const rows = await prisma.node.findMany({ where: { id: { in: [...nodeIds] } }, select: { id: true, payoutAddress: true } });
        return new Map(rows.map((r) => [r.id, r.payoutAddress]));
      }),

    findSettlement: (sessionId, epoch) =>
      serial(async () => {
        const row = await prisma.settlement.findUnique({ where: { sessionId_epoch: { sessionId, epoch } }, select: settlementSelect });
        return row ? toSettlement(row) : null;
      }),

    lastSeq: () =>
      serial(async () => {
        const row = await prisma.settlement.findFirst({ orderBy: { seq: 'desc' }, select: { seq: true } });
        return row?.seq ?? 0;
      }),

    cumulativeByAddress: () =>
      serial(async () => {
        // Newest entry per address wins: entries are read in seq order and later ones overwrite.
        const rows = await prisma.settlementEntry.findMany({
          where: { address: { not: null }, reason: null },
          select: { address: true, cumulative: true, settlement: { select: { seq: true } } },
          orderBy: { settlement: { seq: 'asc' } },
        });
        const out = new Map<string, bigint>();
        for (const row of rows) out.set(row.address!, BigInt(row.cumulative));
        return out;
      }),

    createSettlement: (record, entries) =>
      serial(async () => {
        try {
          await prisma.$transaction(async (tx) => {
            const row = await tx.settlement.create({
              data: {
                seq: record.seq,
                sessionId: record.sessionId,
                epoch: record.epoch,
                root: record.root,
                total: record.total.toString(),
                status: record.status,
                txHash: record.txHash,
                createdAt: new Date(record.createdAt),
                committedAt: record.committedAt === null ? null : new Date(record.committedAt),
              },
              select: { id: true },
            });
            await tx.settlementEntry.createMany({
              data: entries.map((e) => ({
                settlementId: row.id,
                nodeId: e.nodeId,
                address: e.address?.toLowerCase() ?? null,
                samples: e.samples,
                amount: e.amount.toString(),
                cumulative: e.cumulative.toString(),
                reason: e.reason,
              })),
            });
          });
          return true;
        } catch (error) {
          // P2002: (session, epoch) or seq already settled: a redelivered event, nothing to do.
          if ((error as { code?: string }).code === 'P2002') return false;
          throw error;
        }
      }),

    settlements: (status) =>
      serial(async () => {
        const rows = await prisma.settlement.findMany({ where: status ? { status } : {}, orderBy: { seq: 'asc' }, select: settlementSelect });
        return rows.map(toSettlement);
      }),

    markCommitted: (seq, txHash, at) =>
      serial(async () => {
        await prisma.settlement.updateMany({ where: { seq, status: 'pending' }, data: { status: 'committed', txHash, committedAt: new Date(at) } });
      }),

    setSettlementTx: (seq, txHash) =>
      serial(async () => {
        await prisma.settlement.updateMany({ where: { seq, status: 'pending' }, data: { txHash } });
      }),

    settlementEntries: (seq) =>
      serial(async () => {
        const rows = await prisma.settlementEntry.findMany({ where: { settlement: { seq } }, select: entrySelect, orderBy: { nodeId: 'asc' } });
        return rows.map(toEntry);
      }),

    entriesForAddress: (address) =>
      serial(async () => {
        const rows = await prisma.settlementEntry.findMany({ where: { address: address.toLowerCase() }, select: entrySelect, orderBy: { settlement: { seq: 'asc' } } });
        return rows.map(toEntry);
      }),

    paidEntriesUpTo: (seq) =>
      serial(async () => {
        const rows = await prisma.settlementEntry.findMany({
          where: { reason: null, address: { not: null }, settlement: { seq: { lte: seq } } },
          select: entrySelect,
          orderBy: { settlement: { seq: 'asc' } },
        });
        return rows.map(toEntry);
      }),

    allEntries: () =>
      serial(async () => {
        const rows = await prisma.settlementEntry.findMany({ select: entrySelect, orderBy: { settlement: { seq: 'asc' } } });
        return rows.map(toEntry);
      }),
  };
}
