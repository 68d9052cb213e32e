-- A server's monthly units or budget mostly used, or spent, told to its moderators once per quota month and limit
-- (bot/server_alerts.py; a limit an admin raised is told again when reached): the row is written in the transaction
-- of the reservation that crossed the line, so a restart, a second process or a burst of requests tells it once;
-- told_at once its moderators have it (a bot that died before, told at its next start).
CREATE TABLE server_alerts (
    guild_id    INTEGER NOT NULL,
    month_start REAL NOT NULL,
    what        TEXT NOT NULL CHECK (what IN ('units', 'budget')),
    level       TEXT NOT NULL CHECK (level IN ('most', 'spent')),
    limit_value INTEGER NOT NULL,
    used        INTEGER NOT NULL,
    resets_at   REAL NOT NULL,
    created_at  REAL NOT NULL,
    told_at     REAL,
    PRIMARY KEY (guild_id, month_start, what, level, limit_value)
);
