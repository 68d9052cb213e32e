-- The servers the bot posted its welcome in (cogs/welcome.py), each once: a server that removes the bot and adds it
-- again is not welcomed twice. channel_id: where it went (NULL: no channel there took the bot's posts).
CREATE TABLE guild_welcomes (
    guild_id INTEGER PRIMARY KEY,
    welcomed_at REAL NOT NULL,
    channel_id INTEGER
);
-- Since when servers are welcomed: one the bot joined before is not (it was added before a version that welcomes,
-- or before its database was made: an upgrade or a first start must not greet every server it is in). Set by the
-- bot's first start with this table (bot/store/welcomes.py), not here: a new database's schema is made once per
-- process and copied (bot/store/__init__.py), so a time written here could be older than the database.
CREATE TABLE welcomes_since (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    since REAL NOT NULL
);
