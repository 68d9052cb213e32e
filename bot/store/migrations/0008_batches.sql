-- Several candidates per prompt (/imagine count, docs/architecture.md section 4.8): each candidate is its
-- own job (reserved, charged or refunded on its own), and the candidates of one request share a batch
-- id, their place in it, and one Discord message.
ALTER TABLE jobs ADD COLUMN batch_id TEXT;
ALTER TABLE jobs ADD COLUMN batch_index INTEGER;
-- JSON list of the Discord attachment ids a delivered candidate's images got: a later edit of the shared
-- message lists them to keep them (Discord drops every attachment an edit's list leaves out).
ALTER TABLE jobs ADD COLUMN attachment_ids TEXT NOT NULL DEFAULT '[]';
CREATE INDEX jobs_batch ON jobs (batch_id, batch_index) WHERE batch_id IS NOT NULL;

-- The most candidates a member may ask for at once in this server (NULL: the bot's maximum).
ALTER TABLE guild_settings ADD COLUMN max_count INTEGER;
