-- Pings owed (cogs/ready_pings.py): written before a ping is sent, removed once Discord has it or has refused
-- it for good. One a Discord failure or a stop left behind is sent by a later try or the next start while it is
-- fresh, with the same nonce (a ping Discord made but whose answer was lost is not made twice).
CREATE TABLE owed_pings (
    request_key TEXT PRIMARY KEY,  -- the batch's id, else the job's: one ping per request
    guild_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,   -- the request's message, which the ping replies to
    said TEXT NOT NULL,            -- the bot's words after the mention
    owed_at REAL NOT NULL
);
