-- Object versions: one row per upload, from WRITING to DELETED.
-- Keys use COLLATE "C": comparisons in UTF-8 byte order, as the SPEC lists them.
CREATE SEQUENCE objects_commit_seq AS BIGINT;

CREATE TABLE objects (
    id            UUID PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    namespace     TEXT NOT NULL,
    key           TEXT COLLATE "C" NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('WRITING', 'COMMITTED', 'DELETING', 'DELETED')),
    storage_class TEXT NOT NULL CHECK (storage_class IN ('hot', 'cold')),
    content_type  TEXT NOT NULL,
    content_hash  TEXT,
    size_bytes    BIGINT,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    commit_seq    BIGINT UNIQUE
);

-- Reads by key, keyset listing and "newest version" probes: committed rows only.
CREATE INDEX objects_committed_by_key
    ON objects (tenant_id, namespace, key, commit_seq DESC)
    WHERE state = 'COMMITTED';

-- Usage per tenant and class from the index alone.
CREATE INDEX objects_committed_usage
    ON objects (tenant_id, storage_class) INCLUDE (size_bytes)
    WHERE state = 'COMMITTED';

-- GC finds in-flight and deleting rows by age.
CREATE INDEX objects_pending_by_age
    ON objects (state, updated_at)
    WHERE state IN ('WRITING', 'DELETING');

-- Blobs: one row per (storage class, SHA-256); ref_count counts COMMITTED objects.
CREATE TABLE blobs (
    storage_class TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    ref_count     BIGINT NOT NULL CHECK (ref_count >= 0),
    released_at   TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (storage_class, content_hash)
);

CREATE INDEX blobs_unreferenced ON blobs (released_at) WHERE ref_count = 0;

-- API keys: only a SHA-256 of the key is stored.
CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    key_hash   TEXT NOT NULL,
    tenants    TEXT[] NOT NULL,
    scopes     TEXT[] NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
