-- +goose Up
-- settings is a small key/value table for server-wide switches (the demo
-- marker, the drills pause switch, ...), so a part need not add a table for one value.
CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);

-- events is an append-only audit log: who changed what, through the API or the CLI.
CREATE TABLE events (
    id         {{ID}},
    at         {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    part       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX events_part_at ON events (part, at);

-- +goose Down
DROP TABLE events;
DROP TABLE settings;
