-- +goose Up
-- drills_pages is the plan and the history of drills: a row is planned ahead,
-- then claimed, paged (or skipped with a reason), acknowledged, mitigated.
-- Times are unix milliseconds (BIGINT) so both engines compare them alike.
CREATE TABLE drills_pages (
    id            {{ID}},
    dedup_key     TEXT NOT NULL UNIQUE,
    person        TEXT NOT NULL,
    team          TEXT NOT NULL,
    drill_id      TEXT NOT NULL,
    at_ms         BIGINT NOT NULL,
    status        TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    dry_run       BOOLEAN NOT NULL DEFAULT TRUE,
    paged_ms      BIGINT,
    acked_ms      BIGINT,
    mitigated_ms  BIGINT,
    ack_source    TEXT NOT NULL DEFAULT '',
    UNIQUE (person, at_ms)
);
CREATE INDEX drills_pages_status_at ON drills_pages (status, at_ms);

CREATE TABLE drills_findings (
    id         {{ID}},
    page_id    BIGINT NOT NULL REFERENCES drills_pages (id),
    text       TEXT NOT NULL,
    tags       TEXT NOT NULL DEFAULT '',
    created_ms BIGINT NOT NULL
);

-- drills_real_pages are real (not drill) pages, imported or read from
-- Alertmanager, so "days since last page" counts them too.
CREATE TABLE drills_real_pages (
    id     {{ID}},
    person TEXT NOT NULL,
    team   TEXT NOT NULL DEFAULT '',
    at_ms  BIGINT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    UNIQUE (person, at_ms)
);

-- drills_optins override the configuration's opt_in_until, set from the UI.
CREATE TABLE drills_optins (
    person     TEXT PRIMARY KEY,
    until_date TEXT NOT NULL,
    updated_ms BIGINT NOT NULL
);

-- +goose Down
DROP TABLE drills_optins;
DROP TABLE drills_real_pages;
DROP TABLE drills_findings;
DROP TABLE drills_pages;
