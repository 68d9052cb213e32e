-- Every provider (issue 3): estimated cost per job, failover history, server defaults, provider health.
ALTER TABLE jobs ADD COLUMN cost_micro_usd INTEGER;
-- JSON list of {"provider", "category", "reason"} for providers this job left before the one serving it.
ALTER TABLE jobs ADD COLUMN tried_providers TEXT NOT NULL DEFAULT '[]';

CREATE TABLE guild_settings (
    guild_id         INTEGER PRIMARY KEY,
    default_model    TEXT,
    default_provider TEXT,
    updated_by       INTEGER,
    updated_at       REAL NOT NULL
);

CREATE TABLE provider_health (
    provider   TEXT PRIMARY KEY,
    healthy    INTEGER NOT NULL,
    category   TEXT,
    detail     TEXT,
    updated_at REAL NOT NULL
);
