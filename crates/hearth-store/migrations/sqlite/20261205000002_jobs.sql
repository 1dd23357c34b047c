-- The durable job queue: one row per job of any kind (hearth-jobs gives it its meaning).
-- `state` is queued | running | succeeded | dead | cancelled. A running job belongs to the claim
-- in `claim_id` until `lease_until`; a worker renews the lease while it works, and a job whose
-- lease ran out is taken back. `owner` is the user the work is for (NULL: the system).
-- Fair order: each job gets a virtual time `vt` when it is enqueued, the later of its owner's
-- next turn and the queue's head, and workers take the lowest `vt` of the highest priority, so
-- owners' jobs interleave and one owner's backlog does not hold up another owner's new job.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    owner TEXT REFERENCES users(id) ON DELETE CASCADE,
    priority BIGINT NOT NULL DEFAULT 0,
    vt BIGINT NOT NULL,
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
-- The claim walks this index in order and stops at the first due job it may take.
CREATE INDEX jobs_next ON jobs (state, priority DESC, vt, id);
-- The queue's head (lowest queued vt).
CREATE INDEX jobs_head ON jobs (state, vt);
CREATE INDEX jobs_lease ON jobs (state, lease_until);
-- Only for deleting a user's jobs: without the state in it, a job's moves do not touch it.
CREATE INDEX jobs_owner ON jobs (owner);
CREATE INDEX jobs_finished ON jobs (finished_at);
-- An idempotency key names one job of its kind for as long as the row is kept.
CREATE UNIQUE INDEX jobs_idempotency ON jobs (kind, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- Each owner's next virtual time ('' is the system's). At a claim, an owner's row is also what
-- serializes the check of its running-job limit on PostgreSQL.
CREATE TABLE job_turns (
    owner TEXT PRIMARY KEY NOT NULL,
    next_vt BIGINT NOT NULL
);
