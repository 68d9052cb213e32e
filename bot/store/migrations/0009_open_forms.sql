-- The "Edit with Nano Banana" form (cogs/remix.py) names the images it will edit when it opens; a member
-- may submit it after the bot restarted, and without the message-content intent the bot cannot read a
-- member's message again. So what the form was opened on is kept here until it is submitted (or expires).
CREATE TABLE open_forms (
    id          TEXT PRIMARY KEY,
    created_at  REAL NOT NULL,
    body_json   TEXT NOT NULL
);
CREATE INDEX open_forms_created ON open_forms (created_at);
