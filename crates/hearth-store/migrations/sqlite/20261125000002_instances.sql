-- Server instances and their heartbeats: a run belongs to the instance executing it, and only
-- runs of instances that stopped beating are failed (several instances may share PostgreSQL).
CREATE TABLE instances (
    id TEXT PRIMARY KEY NOT NULL,
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
ALTER TABLE runs ADD COLUMN instance_id TEXT;
CREATE INDEX runs_status ON runs(status);
