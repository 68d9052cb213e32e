-- A member's own defaults for /imagine in one server (/preferences, cogs/preferences.py): used for the
-- options they leave out, ahead of the server's defaults. NULL: no preference for that option.
CREATE TABLE member_preferences (
    guild_id        INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    model           TEXT,
    aspect_ratio    TEXT,
    resolution      TEXT,
    output_format   TEXT,
    thinking_level  TEXT,
    web_search      INTEGER,
    count           INTEGER,
    updated_at      REAL NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
