-- A note that went as a reply in the channel (the member takes no DMs) is meant to delete itself after a
-- few seconds. discord.py's delete_after lives in the process: a bot killed or stopped in between left
-- the note, a member's refusal and its reason, in the channel for everyone for good. Which note to delete
-- and when is kept with the reply's row, so the next start deletes what a stop left behind.
ALTER TABLE reply_notes ADD COLUMN note_channel_id INTEGER;
ALTER TABLE reply_notes ADD COLUMN note_message_id INTEGER;
ALTER TABLE reply_notes ADD COLUMN delete_at REAL;
CREATE INDEX reply_notes_to_delete ON reply_notes (delete_at) WHERE delete_at IS NOT NULL;
