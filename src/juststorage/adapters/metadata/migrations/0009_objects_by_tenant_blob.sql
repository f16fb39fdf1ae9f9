-- Upload by hash (SPEC §8.3) asks whether one tenant holds a committed object of a
-- content. The index starts with the tenant, so that probe reads only that tenant's
-- rows: by objects_committed_by_blob it would step over every other tenant's rows
-- of the same content first, and take longer when another tenant holds it (SPEC §5).
CREATE INDEX objects_committed_by_tenant_blob
    ON objects (tenant_id, storage_class, content_hash, size_bytes)
    WHERE state = 'COMMITTED';
