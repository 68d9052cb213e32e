-- Quotas and usage (issue 4): an append-only ledger; balances are sums over it.
CREATE TABLE ledger (
    id             INTEGER PRIMARY KEY,
    guild_id       INTEGER NOT NULL,
    user_id        INTEGER NOT NULL,
    job_id         TEXT,
    -- reserve (+units when a job is accepted), commit (0: the reservation became a charge),
    -- refund (-units: the job ended without an image), grant (-units: one-off extra allowance)
    kind           TEXT NOT NULL CHECK (kind IN ('reserve', 'commit', 'refund', 'grant')),
    units          INTEGER NOT NULL,
    cost_micro_usd INTEGER NOT NULL DEFAULT 0,
    model          TEXT,
    provider       TEXT,
    size           TEXT,
    -- When the row counts for windows: a refund counts at its reservation's time, so a job reserved
    -- yesterday and refunded today gives yesterday's allowance back, not today's.
    window_at      REAL NOT NULL,
    created_at     REAL NOT NULL,
    reason         TEXT,
    -- Owners and the unlimited role are recorded but never refused.
    bypass         INTEGER NOT NULL DEFAULT 0,
    actor_id       INTEGER
);
CREATE INDEX ledger_user_window ON ledger (guild_id, user_id, window_at);
CREATE INDEX ledger_guild_window ON ledger (guild_id, window_at);
-- One reservation and at most one settlement (commit or refund) per job, whatever crashes happen.
CREATE UNIQUE INDEX ledger_job_reserve ON ledger (job_id) WHERE kind = 'reserve';
CREATE UNIQUE INDEX ledger_job_settle ON ledger (job_id) WHERE kind IN ('commit', 'refund');

-- NULL: no reservation (CLI jobs); reserved; committed; refunded.
ALTER TABLE jobs ADD COLUMN charge_state TEXT;
ALTER TABLE jobs ADD COLUMN charge_units INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_in_flight ON jobs (guild_id, user_id) WHERE charge_state = 'reserved';

-- Per-user overrides and per-role tiers set with /quota set; NULL limit = not set here.
CREATE TABLE quota_limits (
    guild_id   INTEGER NOT NULL,
    scope      TEXT NOT NULL CHECK (scope IN ('user', 'role', 'guild')),
    target_id  INTEGER NOT NULL,
    daily      INTEGER,
    weekly     INTEGER,
    monthly    INTEGER,
    in_flight  INTEGER,
    budget_micro_usd INTEGER,
    updated_by INTEGER,
    updated_at REAL NOT NULL,
    PRIMARY KEY (guild_id, scope, target_id)
);

-- /quota reset: usage before this moment no longer counts for the member.
CREATE TABLE quota_resets (
    guild_id INTEGER NOT NULL,
    user_id  INTEGER NOT NULL,
    reset_at REAL NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
