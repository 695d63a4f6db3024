-- +goose Up
-- loops_models keeps model files (YAML or XMILE) as the user wrote them, so a
-- saved model round-trips byte for byte; it is parsed on every read.
CREATE TABLE loops_models (
    id         {{ID}},
    name       TEXT NOT NULL UNIQUE,
    source     TEXT NOT NULL,
    created_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    updated_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);

-- +goose Down
DROP TABLE loops_models;
