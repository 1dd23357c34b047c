-- Ingest runs on the job queue (kind `kb.ingest`): the queue's owner turns replace
-- `ingest_turns`, and its leases replace the document's own. `ingest_gen` counts the times a
-- document was queued; its job's idempotency key is `<document id>:<ingest_gen>`, so a job
-- left from an earlier round never touches the document again.
ALTER TABLE kb_documents ADD COLUMN ingest_gen BIGINT NOT NULL DEFAULT 0;
ALTER TABLE kb_documents DROP COLUMN lease_until;
DROP TABLE ingest_turns;
