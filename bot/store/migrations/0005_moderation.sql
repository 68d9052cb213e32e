-- Moderation (issue 5): safety tolerance per server and channel, blocked terms, bans, audit trail.
CREATE TABLE mod_settings (
    guild_id        INTEGER PRIMARY KEY,
    safety_level    INTEGER,           -- the server's level, 1 (strictest) .. 6 (loosest), NULL = config default
    normal_ceiling  INTEGER,           -- the highest level any normal channel may have
    nsfw_ceiling    INTEGER,           -- the highest level an age-restricted channel may have
    builtin_terms   INTEGER NOT NULL DEFAULT 1,
    log_channel_id  INTEGER,
    updated_by      INTEGER,
    updated_at      REAL NOT NULL
);

CREATE TABLE channel_safety (
    guild_id     INTEGER NOT NULL,
    channel_id   INTEGER NOT NULL,
    safety_level INTEGER NOT NULL,
    updated_by   INTEGER,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);

CREATE TABLE blocked_terms (
    guild_id   INTEGER NOT NULL,
    term       TEXT NOT NULL,
    is_regex   INTEGER NOT NULL DEFAULT 0,
    added_by   INTEGER,
    added_at   REAL NOT NULL,
    PRIMARY KEY (guild_id, term, is_regex)
);

CREATE TABLE bans (
    guild_id   INTEGER NOT NULL,
    user_id    INTEGER NOT NULL,
    reason     TEXT,
    expires_at REAL,                   -- NULL: until unbanned
    kind       TEXT NOT NULL DEFAULT 'ban' CHECK (kind IN ('ban', 'cooldown')),
    banned_by  INTEGER,
    created_at REAL NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER NOT NULL,
    action     TEXT NOT NULL,          -- blocked_prompt, provider_block, ban, unban, cooldown, setting, delete
    actor_id   INTEGER,                -- who did it (NULL: the bot)
    target_id  INTEGER,                -- whom it concerns
    channel_id INTEGER,
    job_id     TEXT,
    prompt     TEXT,
    reason     TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX audit_guild_time ON audit_log (guild_id, created_at);
CREATE INDEX audit_provider_blocks ON audit_log (guild_id, target_id, created_at) WHERE action = 'provider_block';

ALTER TABLE jobs ADD COLUMN safety_level INTEGER;
ALTER TABLE jobs ADD COLUMN deleted_by INTEGER;
