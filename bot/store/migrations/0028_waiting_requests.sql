-- A request taken while its member already had as many generating as their quota allows, to start when one of
-- them ends (bot/waiting_requests.py): the limit it was taken under; NULL once it has started, or never waited.
-- Such a job is reserved (its units held), but does not count as generating until it starts.
ALTER TABLE jobs ADD COLUMN waits_for INTEGER;
