-- Each user's last turn at the ingest queue (`served_at` is a turn number, growing by one per
-- claim). A worker claims the oldest queued document of the user whose turn is oldest (never
-- served first), so one user's thousand files do not hold up another user's one.
CREATE TABLE ingest_turns (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    served_at BIGINT NOT NULL
);
