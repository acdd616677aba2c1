-- AlterTable
ALTER TABLE "RejectedUpdate" ADD COLUMN "count" INTEGER NOT NULL DEFAULT 1;
