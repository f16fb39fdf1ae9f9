-- Resumable multipart uploads (SPEC §8.2): one row per session, one per stored part.
--
-- A session is `open` until its completion commits the object (`completed`, with
-- the object's id, kept until `expires_at` so that a retried completion answers the
-- same object). Every part stored or replaced pushes `expires_at` forward by the
-- session TTL; GC deletes sessions past it and then their parts' bytes.
-- `if_none_match`/`if_match`/`expected_hash`: the conditions the create named,
-- checked again at completion.
CREATE TABLE upload_sessions (
    id            {uuid} PRIMARY KEY,
    tenant_id     TEXT NOT NULL,
    namespace     TEXT NOT NULL,
    key           {key_text} NOT NULL,
    storage_class TEXT NOT NULL CHECK (storage_class IN ('hot', 'cold')),
    content_type  TEXT NOT NULL,
    expected_hash TEXT,
    if_none_match INTEGER NOT NULL,
    if_match      TEXT,
    state         TEXT NOT NULL CHECK (state IN ('open', 'completed')),
    created_at    {timestamp} NOT NULL,
    expires_at    {timestamp} NOT NULL,
    object_id     {uuid}
);
-- The open sessions of a tenant's namespace, keyset-paged by (key, id).
CREATE INDEX upload_sessions_by_key ON upload_sessions (tenant_id, namespace, key, id);
CREATE INDEX upload_sessions_by_expiry ON upload_sessions (expires_at);

-- A stored part: its bytes at `address` in the session's storage class (the store's
-- own name for them), its digest, and the quota reservation that counts its bytes
-- against the tenant's quota until the completion turns them into usage.
CREATE TABLE upload_parts (
    session_id     {uuid} NOT NULL,
    part_number    INTEGER NOT NULL,
    size_bytes     BIGINT NOT NULL,
    sha256         TEXT NOT NULL,
    address        TEXT NOT NULL,
    reservation_id {uuid},
    created_at     {timestamp} NOT NULL,
    PRIMARY KEY (session_id, part_number)
);
