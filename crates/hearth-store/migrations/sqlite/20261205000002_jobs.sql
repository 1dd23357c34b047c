-- The durable job queue: one row per job of any kind (hearth-jobs gives it its meaning).
-- `state` is queued | running | succeeded | dead | cancelled. A running job belongs to the claim
-- in `claim_id` until `lease_until`; a worker renews the lease while it works, and a job whose
-- lease ran out is taken back. `owner` is the user the work is for (NULL: the system); owners
-- take turns (`job_turns`) and may be held to a number of running jobs.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    owner TEXT REFERENCES users(id) ON DELETE CASCADE,
    priority BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    lease_until BIGINT,
    claim_id TEXT,
    worker TEXT,
    last_error TEXT,
    idempotency_key TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX jobs_due ON jobs (state, priority, run_at);
CREATE INDEX jobs_lease ON jobs (state, lease_until);
CREATE INDEX jobs_owner_state ON jobs (owner, state);
-- An idempotency key names one job of its kind for as long as the row is kept.
CREATE UNIQUE INDEX jobs_idempotency ON jobs (kind, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Each owner's last turn at the job queue (a turn number, growing by one per claim). System
-- jobs (no owner) take no turns.
CREATE TABLE job_turns (
    owner TEXT PRIMARY KEY NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    served_at BIGINT NOT NULL
);
