-- Leases: one GC pass at a time across every process sharing the database.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_at {timestamp} NOT NULL
);

-- The process streaming a WRITING row: GC never reaps a live owner's upload.
ALTER TABLE objects ADD COLUMN owner TEXT;

-- fsck and GC count the committed objects of a blob.
CREATE INDEX objects_committed_by_blob
    ON objects (storage_class, content_hash)
    WHERE state = 'COMMITTED';
