-- How a word term is kept (bot/moderation.py add_term). 1: folded with its digits as typed (bot/gate.py kept_form),
-- every row the bot adds from this version on. 0: every row stored before, which bot/gate.py reads as an older
-- version stored them: in normalise()'d form, each 0 1 3 4 5 7 typed written as o i e a s t ("1488" kept as
-- "ia88", "under 18" as "under i8"), and found by what was typed (bot/gate.py Term.normalised, old_word_key). Which
-- of those letters were digits is not kept, so a row is not rewritten: each such letter is read as either.
ALTER TABLE blocked_terms ADD COLUMN kept_digits INTEGER NOT NULL DEFAULT 0;
