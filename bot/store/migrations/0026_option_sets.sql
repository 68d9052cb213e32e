-- A member's option sets (/preferences option_set, Midjourney's /prefer option set: bot/option_sets.py): a JSON
-- object of each set's name and the parameters it stands for. NULL: none.
ALTER TABLE member_preferences ADD COLUMN option_sets TEXT;
