-- Jobs a member starts by replying to one of the bot's images (cogs/replies.py) have no interaction:
-- the bot answers with a reply of its own, sent and then edited with its bot token (message_id).
-- The member's message a job answers, so a restart can find the bot's reply if it died before
-- recording its id (docs/architecture.md section 4.5).
ALTER TABLE jobs ADD COLUMN reply_to_message_id INTEGER;

-- A reply names the bot's message it answers: which job made that image.
CREATE INDEX jobs_message ON jobs (message_id);
