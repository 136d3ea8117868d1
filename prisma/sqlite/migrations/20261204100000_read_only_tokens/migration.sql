-- Read-only API tokens: reads only, every change refused.
ALTER TABLE "ApiToken" ADD COLUMN "readOnly" BOOLEAN NOT NULL DEFAULT false;
