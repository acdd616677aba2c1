-- AlterTable
ALTER TABLE "Contribution" ADD COLUMN "outlierScore" REAL;
