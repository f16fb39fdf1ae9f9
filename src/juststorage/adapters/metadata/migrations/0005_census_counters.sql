-- The census of /metrics (versions and logical bytes per tenant, namespace, class
-- and state), kept by the same transactions that move objects between states, so
-- a scrape reads a few rows per series instead of grouping every object.
-- Shards as in usage_counters: concurrent commits avoid one hot row.
CREATE TABLE census_counters (
    tenant_id     TEXT NOT NULL,
    namespace     TEXT NOT NULL,
    storage_class TEXT NOT NULL,
    state         TEXT NOT NULL,
    shard         SMALLINT NOT NULL,
    objects       BIGINT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, namespace, storage_class, state, shard)
);

INSERT INTO census_counters (tenant_id, namespace, storage_class, state, shard, objects, size_bytes)
SELECT tenant_id, namespace, storage_class, state, 0, COUNT(*), COALESCE(SUM(size_bytes), 0)
FROM objects WHERE state IN ('WRITING', 'COMMITTED', 'DELETING')
GROUP BY tenant_id, namespace, storage_class, state;
