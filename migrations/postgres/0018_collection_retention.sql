-- A collection's own retention (issue 15): conversations that are scoped to the collection or
-- cite it are deleted once untouched for this many days (0 keeps them; a plan's retention may be
-- shorter, and the shorter wins).
ALTER TABLE collections ADD COLUMN conversation_retention_days INTEGER NOT NULL DEFAULT 0;
