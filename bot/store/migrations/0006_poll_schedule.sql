-- The learned poll schedule (bot/schedule.py): completion times per kind of job, and per job the
-- clock the schedule measures from and when it was last polled.
-- A completion is bracketed by polls: still running at `earliest`, done by `latest` (seconds).
CREATE TABLE completion_times (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    earliest    REAL NOT NULL,
    latest      REAL NOT NULL,
    recorded_at REAL NOT NULL
);
CREATE INDEX completion_times_kind ON completion_times (kind, id);

-- provider/model/resolution/reference-group, fixed when the job is sent (it follows a failover).
ALTER TABLE jobs ADD COLUMN schedule_kind TEXT;
-- Submit time, or when the provider first said the job was running (time spent queued is not the model's).
ALTER TABLE jobs ADD COLUMN clock_started_at REAL;
ALTER TABLE jobs ADD COLUMN last_poll_at REAL;
-- The last time the provider said the job was still queued.
ALTER TABLE jobs ADD COLUMN last_queued_at REAL;

-- A provider's callback names its own task id.
CREATE INDEX jobs_provider_job ON jobs (provider, provider_job_id);
