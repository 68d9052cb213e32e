-- Jobs: the single source of truth for every generation (docs/architecture.md section 4).
CREATE TABLE jobs (
    id                TEXT PRIMARY KEY,
    state             TEXT NOT NULL,
    source            TEXT NOT NULL DEFAULT 'discord',
    provider          TEXT NOT NULL,
    model             TEXT NOT NULL,
    request_json      TEXT NOT NULL,
    provider_job_id   TEXT,
    handle_json       TEXT,
    -- Set just before the create request leaves; with no provider_job_id it means "may have been accepted".
    submit_started_at REAL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    poll_errors       INTEGER NOT NULL DEFAULT 0,
    delivery_attempts INTEGER NOT NULL DEFAULT 0,
    next_poll_at      REAL,
    deadline_at       REAL NOT NULL,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    started_at        REAL,
    finished_at       REAL,
    guild_id          INTEGER,
    channel_id        INTEGER,
    user_id           INTEGER,
    application_id    INTEGER,
    interaction_id    INTEGER,
    interaction_token TEXT,
    token_expires_at  REAL,
    message_id        INTEGER,
    upload_limit      INTEGER,
    result_json       TEXT,
    error_category    TEXT,
    error_message     TEXT,
    cost_units        INTEGER NOT NULL DEFAULT 0,
    cancelled_by      INTEGER
);

CREATE INDEX jobs_due ON jobs (next_poll_at)
    WHERE state IN ('queued', 'submitted', 'running', 'succeeded');
CREATE INDEX jobs_user ON jobs (user_id, created_at);
CREATE INDEX jobs_guild ON jobs (guild_id, created_at);
