-- The private notes the bot sent about members' replies (a refusal, the hint, an image gone): one per
-- reply, ever. Kept here rather than in memory so that a restart, which reads the replies of the last
-- hour again (cogs/replies.py, catch-up), does not send a member the same note twice.
CREATE TABLE reply_notes (
    message_id INTEGER PRIMARY KEY,
    noted_at REAL NOT NULL
);
