-- A private note about a member's reply (a refusal, the hint, an image gone) that is not sent yet: written
-- when its first try fails and gone once the note is sent or given up. A DM Discord fails for now is tried
-- again for about 17 s; a stop or a kill in that time cut it, and the next start never read that reply
-- again (its look back reaches only seconds before the last run's end), so the member was told nothing.
-- The next start reads the replies named here and takes each up again (cogs/replies.py).
CREATE TABLE owed_notes (
    message_id INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL,
    owed_at REAL NOT NULL
);
