-- +goose Up
-- sampling_runs keeps the scorecards of `srekit sampler eval` runs (the
-- whole result as JSON: it is read back whole, never queried by field).
CREATE TABLE sampling_runs (
    id         {{ID}},
    ran_at_ms  BIGINT NOT NULL,
    seed       BIGINT NOT NULL,
    traces     BIGINT NOT NULL,
    passed     BOOLEAN NOT NULL,
    result     TEXT NOT NULL
);
CREATE INDEX sampling_runs_ran_at ON sampling_runs (ran_at_ms);

-- sampling_stats are periodic counter snapshots of running samplers
-- (`srekit sampler --db`), for the live chart of the /sampling page.
CREATE TABLE sampling_stats (
    id             {{ID}},
    at_ms          BIGINT NOT NULL,
    instance       TEXT NOT NULL,
    spans_in       BIGINT NOT NULL,
    spans_kept     BIGINT NOT NULL,
    spans_dropped  BIGINT NOT NULL,
    traces_kept    BIGINT NOT NULL,
    traces_dropped BIGINT NOT NULL,
    buffered_bytes BIGINT NOT NULL,
    max_memory     BIGINT NOT NULL,
    stressed       BOOLEAN NOT NULL
);
CREATE INDEX sampling_stats_at ON sampling_stats (instance, at_ms);

-- +goose Down
DROP TABLE sampling_stats;
DROP TABLE sampling_runs;
