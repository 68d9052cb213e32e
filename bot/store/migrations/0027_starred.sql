-- The images members starred with a ⭐ reaction (cogs/star_reaction.py), as on Midjourney, to find again with
-- `/jobs starred:True`: one row per member and image (a batch's message stars each image it shows).
CREATE TABLE starred (
    guild_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    job_id TEXT NOT NULL,
    starred_at REAL NOT NULL,
    PRIMARY KEY (guild_id, user_id, job_id)
) WITHOUT ROWID;
-- A message deleted takes its images' stars with it (cogs/star_reaction.py): found by job.
CREATE INDEX starred_job ON starred (job_id);
