-- When a member erased the words of a request of theirs (/privacy erase, bot/store/erasure.py): its prompt, reference
-- links and the model's text are gone from the row, its figures (model, provider, units, cost) stay for the server's
-- accounting, and nothing may be made from it again. NULL: never erased.
ALTER TABLE jobs ADD COLUMN erased_at REAL;
