-- A moderator's pause of image making (/mod pause, cogs/moderation.py): in the whole server (channel_id 0) or in one
-- channel and its threads. No new request is taken there until it is lifted (/mod resume) or until_at passes (NULL:
-- until lifted). Read by every way into a job (cogs/policy.py moderate), kept in memory per server as bans are.
CREATE TABLE pauses (
    guild_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    until_at REAL,
    reason TEXT,
    paused_by INTEGER NOT NULL,
    paused_at REAL NOT NULL,
    PRIMARY KEY (guild_id, channel_id)
);
