-- CreateTable
CREATE TABLE "TrainingSession" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "state" TEXT NOT NULL,
    "config" TEXT NOT NULL,
    "round" INTEGER NOT NULL DEFAULT 0,
    "modelVersion" INTEGER NOT NULL DEFAULT 0,
    "epoch" INTEGER NOT NULL DEFAULT 0,
    "totalSamples" BIGINT NOT NULL DEFAULT 0,
    "startedAt" DATETIME NOT NULL,
    "endedAt" DATETIME,
    "lastTestAccuracy" REAL,
    "lastTestLoss" REAL,
    "lastRoundDurationMs" INTEGER,
    "samplesPerSecond" REAL NOT NULL DEFAULT 0,
    "message" TEXT
);

-- CreateTable
CREATE TABLE "Node" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "backend" TEXT NOT NULL,
    "device" TEXT NOT NULL,
    "samplesPerSecond" REAL NOT NULL,
    "agentVersion" TEXT NOT NULL,
    "hostname" TEXT NOT NULL,
    "firstSeenAt" DATETIME NOT NULL,
    "lastSeenAt" DATETIME NOT NULL,
    "tokenHash" TEXT
);

-- CreateTable
CREATE TABLE "Round" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "sessionId" INTEGER NOT NULL,
    "round" INTEGER NOT NULL,
    "modelVersion" INTEGER NOT NULL,
    "openedAt" DATETIME NOT NULL,
    "closedAt" DATETIME NOT NULL,
    "applied" BOOLEAN NOT NULL,
    "updates" INTEGER NOT NULL,
    "samples" INTEGER NOT NULL,
    "trainLoss" REAL NOT NULL,
    "failures" INTEGER NOT NULL,
    "totalSamples" BIGINT NOT NULL,
    "cursor" TEXT NOT NULL,
    CONSTRAINT "Round_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "TrainingSession" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Contribution" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "sessionId" INTEGER NOT NULL,
    "round" INTEGER NOT NULL,
    "nodeId" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL,
    "samples" INTEGER NOT NULL,
    "epoch" INTEGER NOT NULL,
    "shardStart" INTEGER NOT NULL,
    "shardCount" INTEGER NOT NULL,
    "checksum" BIGINT NOT NULL,
    "trainLoss" REAL NOT NULL,
    "receivedAt" DATETIME NOT NULL,
    CONSTRAINT "Contribution_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "TrainingSession" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Contribution_sessionId_round_fkey" FOREIGN KEY ("sessionId", "round") REFERENCES "Round" ("sessionId", "round") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "Contribution_nodeId_fkey" FOREIGN KEY ("nodeId") REFERENCES "Node" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "RejectedUpdate" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "sessionId" INTEGER NOT NULL,
    "round" INTEGER NOT NULL,
    "nodeId" INTEGER NOT NULL,
    "attempt" INTEGER NOT NULL,
    "samples" INTEGER NOT NULL,
    "epoch" INTEGER NOT NULL,
    "shardStart" INTEGER NOT NULL,
    "shardCount" INTEGER NOT NULL,
    "checksum" BIGINT NOT NULL,
    "trainLoss" REAL NOT NULL,
    "reason" TEXT NOT NULL,
    "receivedAt" DATETIME NOT NULL,
    CONSTRAINT "RejectedUpdate_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "TrainingSession" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "RejectedUpdate_nodeId_fkey" FOREIGN KEY ("nodeId") REFERENCES "Node" ("id") ON DELETE RESTRICT ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Metric" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "sessionId" INTEGER NOT NULL,
    "round" INTEGER NOT NULL,
    "at" DATETIME NOT NULL,
    "trainLoss" REAL NOT NULL,
    "testLoss" REAL,
    "testAccuracy" REAL,
    "samples" INTEGER NOT NULL,
    "totalSamples" BIGINT NOT NULL,
    "samplesPerSecond" REAL NOT NULL,
    "roundDurationMs" INTEGER NOT NULL,
    "nodes" INTEGER NOT NULL,
    CONSTRAINT "Metric_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "TrainingSession" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "Checkpoint" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "sessionId" INTEGER NOT NULL,
    "round" INTEGER NOT NULL,
    "modelVersion" INTEGER NOT NULL,
    "sha256" TEXT NOT NULL,
    "path" TEXT NOT NULL,
    "bytes" BIGINT NOT NULL,
    "createdAt" DATETIME NOT NULL,
    CONSTRAINT "Checkpoint_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "TrainingSession" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateTable
CREATE TABLE "SessionEvent" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "sessionId" INTEGER NOT NULL,
    "at" DATETIME NOT NULL,
    "round" INTEGER NOT NULL,
    "kind" TEXT NOT NULL,
    "message" TEXT NOT NULL,
    "nodeId" INTEGER,
    "detail" TEXT,
    CONSTRAINT "SessionEvent_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "TrainingSession" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "TrainingSession_state_idx" ON "TrainingSession"("state");

-- CreateIndex
CREATE UNIQUE INDEX "Node_name_key" ON "Node"("name");

-- CreateIndex
CREATE UNIQUE INDEX "Round_sessionId_round_key" ON "Round"("sessionId", "round");

-- CreateIndex
CREATE INDEX "Contribution_nodeId_idx" ON "Contribution"("nodeId");

-- CreateIndex
CREATE UNIQUE INDEX "Contribution_sessionId_round_nodeId_key" ON "Contribution"("sessionId", "round", "nodeId");

-- CreateIndex
CREATE INDEX "RejectedUpdate_sessionId_round_idx" ON "RejectedUpdate"("sessionId", "round");

-- CreateIndex
CREATE INDEX "RejectedUpdate_nodeId_idx" ON "RejectedUpdate"("nodeId");

-- CreateIndex
CREATE UNIQUE INDEX "Metric_sessionId_round_key" ON "Metric"("sessionId", "round");

-- CreateIndex
CREATE UNIQUE INDEX "Checkpoint_sessionId_round_sha256_key" ON "Checkpoint"("sessionId", "round", "sha256");

-- CreateIndex
CREATE INDEX "SessionEvent_sessionId_id_idx" ON "SessionEvent"("sessionId", "id");
