-- When the words of a request were erased (bot/store/erasure.py): by its member's /privacy, or past [privacy]
-- keep_words_days. Its prompt, reference links and the model's text are gone from the row, its figures (model,
-- provider, units, cost) stay for the server's accounting, and nothing may be made from it again. NULL: kept.
ALTER TABLE jobs ADD COLUMN erased_at REAL;
-- The ended requests whose words are still kept, by when they ended: what a keep_words_days sweep reads, so a sweep
-- over a database of old, erased rows reads none of them.
CREATE INDEX jobs_words_kept ON jobs (finished_at) WHERE erased_at IS NULL AND finished_at IS NOT NULL;
