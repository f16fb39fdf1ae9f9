-- The S3 gateway (SPEC §8.8). An object written through it keeps the ETag S3 clients
-- were given (the MD5 hex of its bytes, or `<sha256 hex>-<parts>` for a multipart
-- upload; NULL for /v1 writes, whose S3 ETag is the SHA-256 hex) and its user
-- metadata (`x-amz-meta-*`, a JSON object of at most 2 KiB); a
-- multipart session keeps the user metadata until its completion gives it to the object.
ALTER TABLE objects ADD COLUMN s3_etag TEXT;
ALTER TABLE objects ADD COLUMN user_metadata TEXT CHECK (length(user_metadata) <= 2048);
ALTER TABLE upload_sessions ADD COLUMN user_metadata TEXT CHECK (length(user_metadata) <= 2048);
