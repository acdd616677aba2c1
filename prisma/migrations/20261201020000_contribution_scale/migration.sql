-- AlterTable: the factor an applied update was scaled down by before aggregation (norm clipping)
ALTER TABLE "Contribution" ADD COLUMN "scale" REAL;
