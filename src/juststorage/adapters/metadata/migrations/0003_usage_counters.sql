-- Usage per tenant and class, kept by the same transactions that commit and delete
-- objects, so /v1/usage reads a handful of rows instead of scanning every object.
-- Several shards per (tenant, class) let concurrent commits avoid one hot row.
CREATE TABLE usage_counters (
    tenant_id     TEXT NOT NULL,
    storage_class TEXT NOT NULL,
    shard         SMALLINT NOT NULL,
    objects       BIGINT NOT NULL,
    size_bytes    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, storage_class, shard)
);

INSERT INTO usage_counters (tenant_id, storage_class, shard, objects, size_bytes)
SELECT tenant_id, storage_class, 0, COUNT(*), COALESCE(SUM(size_bytes), 0)
FROM objects WHERE state = 'COMMITTED' GROUP BY tenant_id, storage_class;
