-- What the bot last sent Discord as its slash commands, per application and scope (a guild's id, 0 for the
-- global commands): a digest of the whole list. A start whose commands are the same sends them again only
-- when [discord] sync_commands = "always" (bot/command_sync.py).
CREATE TABLE command_syncs (
    application_id INTEGER NOT NULL,
    scope INTEGER NOT NULL,
    digest TEXT NOT NULL,
    synced_at REAL NOT NULL,
    PRIMARY KEY (application_id, scope)
);
