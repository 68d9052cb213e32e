-- Whether a member is pinged when a slow request of theirs ends (/preferences ping, cogs/ready_pings.py).
-- NULL: as the bot's [imagine] ping_when_ready says; 0: never; 1: yes.
ALTER TABLE member_preferences ADD COLUMN ping INTEGER;
-- Whether members of a server are pinged so at all (/admin defaults pings). NULL: as [imagine] ping_when_ready
-- says. A member's 0 above still turns it off for them; their 1 does not turn it on where the server is off.
ALTER TABLE guild_settings ADD COLUMN pings INTEGER;
