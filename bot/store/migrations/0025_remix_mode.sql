-- Whether a member's Vary buttons first ask for the words to vary by (/preferences remix, Midjourney's Remix mode:
-- cogs/remix_vary.py). NULL or 0: off; 1: on.
ALTER TABLE member_preferences ADD COLUMN remix INTEGER;
