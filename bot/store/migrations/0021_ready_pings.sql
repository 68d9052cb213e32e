-- Whether a member is pinged when a slow request of theirs ends (/preferences ping, cogs/ready_pings.py).
-- NULL: as the bot's [imagine] ping_when_ready says; 0: never; 1: yes.
ALTER TABLE member_preferences ADD COLUMN ping INTEGER;
