-- A server's gallery (/admin gallery, cogs/gallery.py): the channel where an image that `stars` members starred with
-- a ⭐ (its own member's not counted) is posted, once.
CREATE TABLE galleries (
    guild_id INTEGER PRIMARY KEY,
    channel_id INTEGER NOT NULL,
    stars INTEGER NOT NULL,
    set_by INTEGER NOT NULL,
    set_at REAL NOT NULL
);
-- Each image posted to its server's gallery: claimed before the post (message_id NULL until it is made), so that two
-- ⭐ at once post it once; a claim a stop cut short is taken again after a while. Deleted with the image's message; a
-- post its member took down (❌) keeps its row, so that it is not posted again.
CREATE TABLE gallery_posts (
    job_id TEXT PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    original_message_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    message_id INTEGER,
    claimed_at REAL NOT NULL
);
CREATE INDEX gallery_posts_original ON gallery_posts (original_message_id);
-- A ❌ on a post, by the image's own member, takes it down (and it stays down): found by the post.
CREATE INDEX gallery_posts_message ON gallery_posts (message_id);
