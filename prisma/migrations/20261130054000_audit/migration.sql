-- CreateTable
CREATE TABLE "Audit" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "sessionId" INTEGER NOT NULL,
    "epoch" INTEGER NOT NULL,
    "round" INTEGER NOT NULL,
    "nodeId" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL,
    "modelVersion" INTEGER NOT NULL,
    "shardStart" INTEGER NOT NULL,
    "shardCount" INTEGER NOT NULL,
    "outcome" TEXT NOT NULL,
    "selectedBy" TEXT NOT NULL,
    "relativeError" REAL,
    "cosine" REAL,
    "tolerance" REAL NOT NULL,
    "detail" TEXT,
    "selectedAt" DATETIME NOT NULL,
    "resolvedAt" DATETIME
);

-- CreateTable
CREATE TABLE "EpochForfeit" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "sessionId" INTEGER NOT NULL,
    "epoch" INTEGER NOT NULL,
    "nodeId" INTEGER NOT NULL,
    "reason" TEXT NOT NULL,
    "at" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "EpochAudit" (
    "sessionId" INTEGER NOT NULL,
    "epoch" INTEGER NOT NULL,
    "audits" INTEGER NOT NULL,
    "forfeited" INTEGER NOT NULL,
    "at" DATETIME NOT NULL,

    PRIMARY KEY ("sessionId", "epoch")
);

-- CreateIndex
CREATE INDEX "Audit_sessionId_epoch_idx" ON "Audit"("sessionId", "epoch");

-- CreateIndex
CREATE INDEX "Audit_nodeId_idx" ON "Audit"("nodeId");

-- CreateIndex
CREATE UNIQUE INDEX "Audit_sessionId_round_nodeId_key" ON "Audit"("sessionId", "round", "nodeId");

-- CreateIndex
CREATE INDEX "EpochForfeit_nodeId_idx" ON "EpochForfeit"("nodeId");

-- CreateIndex
CREATE UNIQUE INDEX "EpochForfeit_sessionId_epoch_nodeId_key" ON "EpochForfeit"("sessionId", "epoch", "nodeId");
