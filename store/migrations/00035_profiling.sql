-- +goose Up
-- profiling_blobs holds each distinct profile body once, gzip-compressed folded
-- stacks, keyed by the SHA-256 of the uncompressed canonical text: identical
-- uploads (the same idle service profiled twice, a retried agent upload) share
-- one blob.
CREATE TABLE profiling_blobs (
    hash       TEXT PRIMARY KEY,
    data       {{BLOB}} NOT NULL,
    raw_bytes  BIGINT NOT NULL,
    total      BIGINT NOT NULL
);

-- profiling_snapshots is one profile of one thing over one time range.
-- Times are Unix milliseconds (portable and cheap to compare on both engines).
-- resolution is raw, hour or day: retention merges old raw snapshots into
-- hourly and then daily aggregates.
CREATE TABLE profiling_snapshots (
    id          {{ID}},
    blob_hash   TEXT NOT NULL REFERENCES profiling_blobs (hash),
    kind        TEXT NOT NULL,
    unit        TEXT NOT NULL DEFAULT '',
    labels      TEXT NOT NULL DEFAULT '{}',
    start_ms    BIGINT NOT NULL,
    end_ms      BIGINT NOT NULL,
    source      TEXT NOT NULL DEFAULT '',
    total       BIGINT NOT NULL,
    resolution  TEXT NOT NULL DEFAULT 'raw',
    created_at  {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);
CREATE UNIQUE INDEX profiling_snapshots_dedup ON profiling_snapshots (blob_hash, kind, labels, start_ms, end_ms);
CREATE INDEX profiling_snapshots_time ON profiling_snapshots (end_ms, start_ms);

-- profiling_labels indexes snapshot labels for selector queries.
CREATE TABLE profiling_labels (
    snapshot_id BIGINT NOT NULL REFERENCES profiling_snapshots (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (snapshot_id, key)
);
CREATE INDEX profiling_labels_kv ON profiling_labels (key, value);

-- profiling_agents are the hosts that registered with `srekit agent`.
CREATE TABLE profiling_agents (
    name        TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    labels      TEXT NOT NULL DEFAULT '{}',
    targets     TEXT NOT NULL DEFAULT '[]',
    version     TEXT NOT NULL DEFAULT '',
    seen_ms     BIGINT NOT NULL
);

-- profiling_captures is the queue of capture requests (from the UI, a
-- schedule or an alert) and their outcome.
CREATE TABLE profiling_captures (
    id           {{ID}},
    agent        TEXT NOT NULL,
    target       TEXT NOT NULL DEFAULT '',
    kind         TEXT NOT NULL,
    seconds      INTEGER NOT NULL,
    preroll      BOOLEAN NOT NULL DEFAULT FALSE,
    status       TEXT NOT NULL DEFAULT 'pending',
    reason       TEXT NOT NULL DEFAULT '',
    labels       TEXT NOT NULL DEFAULT '{}',
    error        TEXT NOT NULL DEFAULT '',
    snapshot_id  BIGINT,
    preroll_snapshot_id BIGINT,
    created_ms   BIGINT NOT NULL,
    started_ms   BIGINT NOT NULL DEFAULT 0,
    done_ms      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX profiling_captures_agent ON profiling_captures (agent, status);

-- profiling_schedules are continuous captures: every every_s seconds, capture
-- seconds of kind from agent/target. next_ms is claimed with a compare-and-set
-- so that several servers sharing one database fire each run once.
CREATE TABLE profiling_schedules (
    id          {{ID}},
    agent       TEXT NOT NULL,
    target      TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    seconds     INTEGER NOT NULL,
    every_s     INTEGER NOT NULL,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    next_ms     BIGINT NOT NULL,
    last_capture_id BIGINT
);

-- profiling_alert_rules map Alertmanager alerts to captures.
CREATE TABLE profiling_alert_rules (
    id          {{ID}},
    name        TEXT NOT NULL,
    matchers    TEXT NOT NULL DEFAULT '{}',
    agent_label TEXT NOT NULL DEFAULT '',
    agent       TEXT NOT NULL DEFAULT '',
    target      TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL,
    seconds     INTEGER NOT NULL,
    preroll     BOOLEAN NOT NULL DEFAULT FALSE
);

-- +goose Down
DROP TABLE profiling_alert_rules;
DROP TABLE profiling_schedules;
DROP TABLE profiling_captures;
DROP TABLE profiling_agents;
DROP TABLE profiling_labels;
DROP TABLE profiling_snapshots;
DROP TABLE profiling_blobs;
