-- +goose Up
-- profiling_pull_targets are pprof endpoints the server captures from itself
-- (no agent on that host), added through the API, the CLI or the page. They
-- appear as targets of the agent "server-HOSTNAME" of each server.
CREATE TABLE profiling_pull_targets (
    name        TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',
    created_ms  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE profiling_pull_targets;
