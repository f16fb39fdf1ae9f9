-- Object versions: one row per upload, from WRITING to DELETED.
-- Keys compare in UTF-8 byte order, as the SPEC lists them: COLLATE "C" on
-- PostgreSQL; SQLite's TEXT compares with BINARY collation, which is that order.
--postgres CREATE SEQUENCE objects_commit_seq AS BIGINT;

CREATE TABLE objects (
    id            {uuid} PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    namespace     TEXT NOT NULL,
    key           {key_text} NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('WRITING', 'COMMITTED', 'DELETING', 'DELETED')),
    storage_class TEXT NOT NULL CHECK (storage_class IN ('hot', 'cold')),
    content_type  TEXT NOT NULL,
    content_hash  TEXT,
    size_bytes    {bigint},
    created_at    {timestamp} NOT NULL,
    updated_at    {timestamp} NOT NULL,
    commit_seq    {bigint} UNIQUE
);

-- Reads by key, keyset listing and "newest version" probes: committed rows only.
CREATE INDEX objects_committed_by_key
    ON objects (tenant_id, namespace, key, commit_seq DESC)
    WHERE state = 'COMMITTED';

-- Usage per tenant and class from the index alone.
CREATE INDEX objects_committed_usage
--postgres     ON objects (tenant_id, storage_class) INCLUDE (size_bytes)
--sqlite     ON objects (tenant_id, storage_class, size_bytes)
    WHERE state = 'COMMITTED';

-- GC finds in-flight and deleting rows by age.
CREATE INDEX objects_pending_by_age
    ON objects (state, updated_at)
    WHERE state IN ('WRITING', 'DELETING');

-- Blobs: one row per (storage class, SHA-256); ref_count counts COMMITTED objects.
CREATE TABLE blobs (
    storage_class TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    size_bytes    {bigint} NOT NULL,
    ref_count     {bigint} NOT NULL CHECK (ref_count >= 0),
    released_at   {timestamp},
    created_at    {timestamp} NOT NULL,
    PRIMARY KEY (storage_class, content_hash)
--postgres );
--sqlite ) WITHOUT ROWID;

CREATE INDEX blobs_unreferenced ON blobs (released_at) WHERE ref_count = 0;

-- API keys: only a SHA-256 of the key is stored.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    key_hash   TEXT NOT NULL,
    tenants    {text_list} NOT NULL,
    scopes     {text_list} NOT NULL,
    created_at {timestamp} NOT NULL,
    revoked_at {timestamp}
);
