-- A server's monthly units or budget mostly used, or spent, told to its moderators once per quota month
-- (bot/server_alerts.py): the row is written in the transaction of the reservation that crossed the line, so a
-- restart, a second process or a burst of requests at once tells it once.
CREATE TABLE server_alerts (
    guild_id    INTEGER NOT NULL,
    month_start REAL NOT NULL,
    what        TEXT NOT NULL CHECK (what IN ('units', 'budget')),
    level       TEXT NOT NULL CHECK (level IN ('most', 'spent')),
    created_at  REAL NOT NULL,
    PRIMARY KEY (guild_id, month_start, what, level)
);
