-- Recurring jobs: a cron expression in a time zone, and the job each tick enqueues. `next_at`
-- is the next tick. An instance that finds a schedule due enqueues the tick's job under the
-- idempotency key `schedule:<name>:<tick>` and then moves `next_at` on only if it still
-- holds the tick it saw, so a tick fires once however many instances look at it.
CREATE TABLE schedules (
    name TEXT PRIMARY KEY NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    owner TEXT REFERENCES users(id) ON DELETE CASCADE,
    priority BIGINT NOT NULL DEFAULT 0,
    max_attempts BIGINT NOT NULL,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    next_at BIGINT NOT NULL,
    last_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX schedules_due ON schedules (enabled, next_at);
