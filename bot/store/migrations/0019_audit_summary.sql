-- What each moderation or admin event said when it was logged (the moderation log channel's words, without the
-- quoted prompt, which the prompt column keeps): /mod log shows it. NULL for rows written before this version,
-- which /mod log describes from their other columns.
ALTER TABLE audit_log ADD COLUMN summary TEXT;
