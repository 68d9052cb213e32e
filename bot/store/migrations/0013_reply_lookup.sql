-- A reply the bot finds in a channel's history after being away (cogs/replies.py, catch-up) is carried
-- out only if no job answers it yet: looked up by the member's message, a handful of rows per start.
CREATE INDEX jobs_reply_to ON jobs (reply_to_message_id) WHERE reply_to_message_id IS NOT NULL;
