-- AlterTable
ALTER TABLE "Node" ADD COLUMN "payoutAddress" TEXT;
ALTER TABLE "Node" ADD COLUMN "walletAddress" TEXT;

-- CreateTable
CREATE TABLE "Settlement" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "seq" INTEGER NOT NULL,
    "sessionId" INTEGER NOT NULL,
    "epoch" INTEGER NOT NULL,
    "root" TEXT NOT NULL,
    "total" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "txHash" TEXT,
    "createdAt" DATETIME NOT NULL,
    "committedAt" DATETIME
);

-- CreateTable
CREATE TABLE "SettlementEntry" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "settlementId" INTEGER NOT NULL,
    "nodeId" INTEGER NOT NULL,
    "address" TEXT,
    "samples" INTEGER NOT NULL,
    "amount" TEXT NOT NULL,
    "cumulative" TEXT NOT NULL,
    "reason" TEXT,
    CONSTRAINT "SettlementEntry_settlementId_fkey" FOREIGN KEY ("settlementId") REFERENCES "Settlement" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "SettlementEntry_nodeId_fkey" FOREIGN KEY ("nodeId") REFERENCES "Node" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "Settlement_seq_key" ON "Settlement"("seq");

-- CreateIndex
CREATE UNIQUE INDEX "Settlement_sessionId_epoch_key" ON "Settlement"("sessionId", "epoch");

-- CreateIndex
CREATE INDEX "SettlementEntry_address_idx" ON "SettlementEntry"("address");

-- CreateIndex
CREATE UNIQUE INDEX "SettlementEntry_settlementId_nodeId_key" ON "SettlementEntry"("settlementId", "nodeId");
