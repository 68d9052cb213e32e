-- A cancel asked for (bot/jobs.py, JobRunner.request_cancel), written before anything else is done
-- about it. On an unfinished job: to be carried out ('show' its end on the member's message, or
-- 'silent': its message was deleted); a bot killed meanwhile carries it out at its next start instead
-- of polling the job on and delivering (and charging) an image the member called off. On an ended job:
-- the member has been shown the end, but the provider has not yet been asked to stop; cleared once it
-- has been, re-sent at the next start otherwise. NULL: nothing asked, or nothing left to do.
ALTER TABLE jobs ADD COLUMN cancel_requested TEXT CHECK (cancel_requested IN ('show', 'silent'));

-- The start-up look for providers still to be told: a handful of rows in a table of every job ever.
CREATE INDEX jobs_cancel_requested ON jobs (id) WHERE cancel_requested IS NOT NULL;
