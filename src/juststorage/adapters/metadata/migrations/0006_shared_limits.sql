-- Quota reservations: the bytes each upload in flight may still commit. Committed
-- usage plus every live reservation of a tenant never exceeds its quota (checked and
-- inserted under the tenant's quota lock, across every process sharing the database).
-- The upload's commit deletes its row; the row of a process that died lapses at
-- expires_at, which the uploading process keeps pushing forward.
CREATE TABLE quota_reservations (
    id         {uuid} PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    expires_at {timestamp} NOT NULL
);
CREATE INDEX quota_reservations_by_tenant ON quota_reservations (tenant_id, expires_at);

-- Token buckets shared by every process: a tenant's request rate and upload
-- bandwidth. `stamp` is the database clock (seconds since the epoch) of the last
-- refill; `last_grant` what the last take granted, NULL if it was refused (RETURNING
-- sees only the new values).
CREATE TABLE rate_buckets (
    tenant_id  TEXT NOT NULL,
    resource   TEXT NOT NULL,
    tokens     DOUBLE PRECISION NOT NULL,
    stamp      DOUBLE PRECISION NOT NULL,
    last_grant DOUBLE PRECISION,
    PRIMARY KEY (tenant_id, resource)
);
