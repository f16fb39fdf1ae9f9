-- Scrub (SPEC §8.9): the server re-hashes every blob row, one pass after another.
--
-- scrub_progress: one row per scrubber (named 'scrub'), so that a restart resumes
-- the pass where it stopped: the last blob row done, in (storage_class,
-- content_hash) order (NULL: the pass has not finished a blob yet), the pass
-- number, when it started, and what it has read; and when the last whole pass
-- began and ended (the metrics: passes completed, seconds of the last pass).
CREATE TABLE scrub_progress (
    name                 TEXT PRIMARY KEY,
    pass_number          {bigint} NOT NULL,
    started_at           {timestamp} NOT NULL,
    storage_class        TEXT,
    content_hash         TEXT,
    blobs_done           {bigint} NOT NULL,
    bytes_done           {bigint} NOT NULL,
    updated_at           {timestamp} NOT NULL,
    passes_completed     {bigint} NOT NULL,
    last_pass_started_at {timestamp},
    last_pass_ended_at   {timestamp}
);

-- Blobs whose bytes did not hash to their name, or were missing, when last read;
-- a row leaves when the blob reads back good, or when its blob row is removed.
CREATE TABLE corrupt_blobs (
    storage_class TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    found_at      {timestamp} NOT NULL,
    detail        TEXT NOT NULL,
    PRIMARY KEY (storage_class, content_hash)
);
