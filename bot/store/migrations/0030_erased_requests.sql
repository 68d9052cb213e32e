-- When the words of a request were erased (bot/store/erasure.py): by its member's /privacy, or past [privacy]
-- keep_words_days. Its prompt, reference links and the model's text are gone from the row, its figures (model,
-- provider, units, cost) stay for the server's accounting, and nothing may be made from it again. NULL: kept.
ALTER TABLE jobs ADD COLUMN erased_at REAL;
-- The ended requests whose words are still kept, by when they ended: what a keep_words_days sweep reads, so a sweep
-- over a database of old, erased rows reads none of them.
CREATE INDEX jobs_words_kept ON jobs (finished_at) WHERE erased_at IS NULL AND finished_at IS NOT NULL;
-- When an erased request's message was drawn again without its words (its prompt in the embed, its image's alt
-- text: bot/delivery.py redraw_erased); NULL while that is owed, through restarts. A request with no message has
-- nothing to draw, and is marked with its erasure.
ALTER TABLE jobs ADD COLUMN erasure_shown_at REAL;
CREATE INDEX jobs_erasure_unshown ON jobs (erased_at) WHERE erased_at IS NOT NULL AND erasure_shown_at IS NULL;
