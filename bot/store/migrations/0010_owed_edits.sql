-- A finished job whose final state Discord refused to show (a 5xx, a dropped connection). The runner tries
-- the edit again in the background; this row keeps that debt across a restart, so the member still learns
-- how the job ended if the bot dies (or is stopped) before an edit gets through. Written only when an edit
-- fails; deleted once one succeeds or the runner gives up.
CREATE TABLE owed_edits (
    job_id  TEXT PRIMARY KEY REFERENCES jobs(id),
    since   REAL NOT NULL
);
