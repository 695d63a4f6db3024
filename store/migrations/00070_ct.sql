-- +goose Up
-- ct_logs is the Certificate Transparency monitor's state per log: how far it
-- has read (position, with the Merkle frontier of entries [0, position)), the
-- last tree head it verified, and the newest it has seen. Times are Unix
-- milliseconds (BIGINT) so both engines compare them alike.
CREATE TABLE ct_logs (
    log_id             TEXT PRIMARY KEY,
    description        TEXT NOT NULL DEFAULT '',
    operator           TEXT NOT NULL DEFAULT '',
    kind               TEXT NOT NULL,
    url                TEXT NOT NULL,
    list_state         TEXT NOT NULL DEFAULT '',
    position           BIGINT NOT NULL DEFAULT 0,
    frontier_start     BIGINT NOT NULL DEFAULT 0,
    frontier           {{BLOB}},
    verified_size      BIGINT NOT NULL DEFAULT 0,
    verified_root      {{BLOB}},
    verified_timestamp BIGINT NOT NULL DEFAULT 0,
    latest_size        BIGINT NOT NULL DEFAULT 0,
    latest_timestamp   BIGINT NOT NULL DEFAULT 0,
    status             TEXT NOT NULL DEFAULT 'new',
    last_error         TEXT NOT NULL DEFAULT '',
    updated_ms         BIGINT NOT NULL DEFAULT 0
);

-- ct_sths keeps every signed tree head seen, verified or pending.
CREATE TABLE ct_sths (
    log_id     TEXT NOT NULL,
    tree_size  BIGINT NOT NULL,
    root_hash  {{BLOB}} NOT NULL,
    sth_ms     BIGINT NOT NULL,
    signature  {{BLOB}} NOT NULL,
    verified   BOOLEAN NOT NULL DEFAULT FALSE,
    seen_ms    BIGINT NOT NULL,
    PRIMARY KEY (log_id, tree_size, root_hash)
);

-- ct_problems are the loud reports: forks, bad signatures, inconsistent roots.
CREATE TABLE ct_problems (
    id      {{ID}},
    log_id  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    detail  TEXT NOT NULL,
    at_ms   BIGINT NOT NULL
);
CREATE INDEX ct_problems_log ON ct_problems (log_id, at_ms);

-- ct_rules are the watched names, as last given to `srekit ct watch`.
CREATE TABLE ct_rules (
    pattern   TEXT PRIMARY KEY,
    issuers   TEXT NOT NULL DEFAULT '',
    added_ms  BIGINT NOT NULL
);

-- ct_findings holds one row per certificate per rule: the precertificate and
-- the final certificate share cert_key (the TBS hash without CT extensions).
-- notified_ms is set once the finding has been delivered (outbox).
CREATE TABLE ct_findings (
    id               {{ID}},
    rule             TEXT NOT NULL,
    cert_key         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    names            TEXT NOT NULL DEFAULT '',
    issuer           TEXT NOT NULL DEFAULT '',
    issuer_expected  BOOLEAN NOT NULL DEFAULT TRUE,
    serial           TEXT NOT NULL DEFAULT '',
    not_before_ms    BIGINT NOT NULL DEFAULT 0,
    not_after_ms     BIGINT NOT NULL DEFAULT 0,
    has_precert      BOOLEAN NOT NULL DEFAULT FALSE,
    has_cert         BOOLEAN NOT NULL DEFAULT FALSE,
    log_id           TEXT NOT NULL,
    entry_index      BIGINT NOT NULL,
    entry_ms         BIGINT NOT NULL DEFAULT 0,
    found_ms         BIGINT NOT NULL,
    notified_ms      BIGINT,
    notify_attempts  INTEGER NOT NULL DEFAULT 0,
    notify_error     TEXT NOT NULL DEFAULT '',
    UNIQUE (rule, cert_key)
);
CREATE INDEX ct_findings_found ON ct_findings (found_ms);
CREATE INDEX ct_findings_pending ON ct_findings (notified_ms);

-- +goose Down
DROP TABLE ct_findings;
DROP TABLE ct_rules;
DROP TABLE ct_problems;
DROP TABLE ct_sths;
DROP TABLE ct_logs;
