-- Backups in progress (docs/backup.md, docs/durability.md): while a hold is valid and
-- its holder not known dead, GC removes no blob released at or after the oldest
-- hold's started_at and no orphan, so the blobs a backup's snapshot names stay
-- until it has copied them. A backup commits its hold before it takes its snapshot,
-- pushes expires_at forward while it runs and deletes the row at its end; a killed
-- backup's row lapses at expires_at (or at once when its holder is known dead).
CREATE TABLE backup_holds (
    id         TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    started_at {timestamp} NOT NULL,
    expires_at {timestamp} NOT NULL
);
