-- +goose Up
-- Inventory ingest writes one fw_host_components row per host and slot
-- (200,000 for 10,000 hosts x 20 parts). The (component_id, version) index
-- nearly doubled that cost, and no query needs it: version logic runs in Go
-- over the whole table. Dropped here rather than edited out of 00050.
DROP INDEX IF EXISTS fw_host_components_component;

-- +goose Down
CREATE INDEX fw_host_components_component ON fw_host_components (component_id, version);
