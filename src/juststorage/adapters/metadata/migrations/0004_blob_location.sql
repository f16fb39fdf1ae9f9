-- Where a blob lives when its store does not derive the place from the hash (an
-- S3 key written once by the upload that created the row). NULL: the filesystem
-- store's content path <root>/sha256/hh/hh/<hex>, so that layout is unchanged.
ALTER TABLE blobs ADD COLUMN location TEXT;

-- GC and fsck find a keyed object's row by its key.
CREATE INDEX blobs_by_location ON blobs (storage_class, location) WHERE location IS NOT NULL;
