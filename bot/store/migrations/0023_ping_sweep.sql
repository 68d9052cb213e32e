-- A ping paid (sent, refused for good, or given up) is kept a while with its time, no longer deleted at once, so
-- that a start can tell an end whose ping was paid from one whose ping was never owed: a stop between a job's end
-- and the row owing its ping left the member unpinged, and the next start now owes and sends it
-- (cogs/ready_pings.py, the sweep). Rows paid long enough ago are deleted (bot/store/owed_pings.py).
ALTER TABLE owed_pings ADD COLUMN paid_at REAL;
CREATE INDEX owed_pings_paid ON owed_pings (paid_at) WHERE paid_at IS NOT NULL;
-- The ends a start sweeps: the last few minutes' (jobs.finished_at is set once, when a job ends).
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
-- Ends before this migration are not swept: the code before it deleted a ping's row once paid, so a ping it sent
-- left no trace, and sweeping its ends would ping their members a second time.
CREATE TABLE ping_sweep (since REAL NOT NULL);
INSERT INTO ping_sweep (since) VALUES (CAST(strftime('%s', 'now') AS REAL));
