-- +goose Up
-- profiling_timelines keeps, for snapshots ingested from perf script (which
-- timestamps every sample), the per-sample time order: offset and stack index
-- of each sample, delta/varint encoded and gzip-compressed (see
-- profiling.Timeline). It drives the sub-second (FlameScope) heat map and the
-- flame graph of a time range. At most one per snapshot; deleted with it.
CREATE TABLE profiling_timelines (
    snapshot_id BIGINT PRIMARY KEY REFERENCES profiling_snapshots (id) ON DELETE CASCADE,
    data        {{BLOB}} NOT NULL,
    samples     BIGINT NOT NULL,
    span_us     BIGINT NOT NULL
);

-- +goose Down
DROP TABLE profiling_timelines;
