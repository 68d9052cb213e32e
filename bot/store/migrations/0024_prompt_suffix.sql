-- Words a member adds to the end of every new /imagine prompt of theirs in a server (/preferences suffix,
-- Midjourney's /prefer suffix: bot/prompt_suffix.py). NULL: none.
ALTER TABLE member_preferences ADD COLUMN suffix TEXT;
