-- +goose Up
-- cost_scenarios keeps scenario files as the user wrote them (YAML), so a
-- saved scenario round-trips byte for byte; it is parsed on every read.
CREATE TABLE cost_scenarios (
    id         {{ID}},
    name       TEXT NOT NULL UNIQUE,
    yaml       TEXT NOT NULL,
    created_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    updated_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);

-- +goose Down
DROP TABLE cost_scenarios;
