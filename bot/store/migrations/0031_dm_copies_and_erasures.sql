-- The bot's DMs that show a request's words: a ✉️ copy's parts (cogs/dm_reaction.py) and an end notice
-- (cogs/end_notices.py), and the member each went to. A member cannot delete the bot's DMs to them, so when the
-- request's words are erased (bot/store/erasure.py) each is drawn again without them, as its message in the channel
-- is (bot/erased_messages.py); and a ✉️ given while the bot was away gets its copy when it is back unless one was
-- sent (cogs/missed_reactions.py). job_id: the request's first job shown (a batch's copy shows its candidates, all
-- erased together).
CREATE TABLE dm_copies (
    message_id INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL,
    job_id TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    sent_at REAL NOT NULL,
    -- When its request's words were erased: its redraw owed from then, through restarts; cleared once done.
    owed_at REAL
);
CREATE INDEX dm_copies_job ON dm_copies (job_id, user_id);
CREATE INDEX dm_copies_owed ON dm_copies (owed_at) WHERE owed_at IS NOT NULL;
-- Since when copies are recorded: one sent before (by a version that recorded none) is unknown, so a ✉️ found on an
-- image shown before then is not taken up again.
CREATE TABLE dm_copies_since (at REAL NOT NULL);
INSERT INTO dm_copies_since (at) VALUES (CAST(strftime('%s', 'now') AS REAL));
-- When each member last erased their words in a server (bot/store/erasure.py): the ⭐ still on an image shown before
-- then may be one the erasure took away, which the reading of reactions missed while away (cogs/missed_reactions.py)
-- must not give back.
CREATE TABLE member_erasures (
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    erased_at REAL NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
