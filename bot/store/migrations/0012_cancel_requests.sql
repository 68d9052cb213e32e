-- A member's cancel is written down before the provider is asked to stop (bot/jobs.py, JobRunner.cancel),
-- so a bot killed between the two finishes the cancel at its next start instead of polling the job on
-- and delivering (and charging) an image the member called off. 'show': end it on the member's message;
-- 'silent': its message was deleted, there is nothing to show it on. NULL: nobody asked.
ALTER TABLE jobs ADD COLUMN cancel_requested TEXT CHECK (cancel_requested IN ('show', 'silent'));
