-- Blobs of at most JUSTSTORAGE_INLINE_MAX_BYTES kept in the database (SPEC §8.1):
-- the bytes of each blob row whose location is 'inline:<hex>', written in the
-- transaction that commits its first object and deleted with its blob row.
--
-- A table of its own rather than a column of `blobs`: the blob row is updated on
-- every reference taken or released, and both databases rewrite a whole row on
-- update (PostgreSQL writes a new tuple, with any value under ~2 KiB stored in it
-- rather than TOASTed; SQLite rewrites the record and its overflow pages), so the
-- bytes would be copied on every dedup hit and delete. Apart, the blob rows stay a
-- few dozen bytes each for GC's and fsck's scans, and a download reads the bytes
-- by the same primary key in its one query (a second index seek, no file open).
-- SQLite: a rowid table, since rows this large do not suit WITHOUT ROWID.
CREATE TABLE inline_blobs (
    storage_class TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    data          {bytes} NOT NULL,
    PRIMARY KEY (storage_class, content_hash)
);
