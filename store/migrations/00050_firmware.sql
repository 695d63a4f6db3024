-- +goose Up
-- The firmware versions database (firmware/db.go): what exists (components
-- and their releases), what should run (targets), what runs (hosts and the
-- versions observed on them), and the rollouts that move hosts to targets.

-- fw_components is a kind of updatable part: a BMC, a system BIOS, an NVMe
-- drive model, a NIC. version_format is fwupd's name (firmware.Format).
CREATE TABLE fw_components (
    id             {{ID}},
    vendor         TEXT NOT NULL,
    model          TEXT NOT NULL,
    kind           TEXT NOT NULL,
    version_format TEXT NOT NULL DEFAULT '',
    appstream_id   TEXT NOT NULL DEFAULT '',
    UNIQUE (vendor, model, kind)
);

-- fw_releases are the versions published for a component. known_bad marks a
-- release that must not be installed (set by hand or by a halted rollout).
CREATE TABLE fw_releases (
    id           {{ID}},
    component_id BIGINT NOT NULL REFERENCES fw_components (id) ON DELETE CASCADE,
    version      TEXT NOT NULL,
    format       TEXT NOT NULL DEFAULT '',
    released_on  TEXT NOT NULL DEFAULT '',
    urgency      TEXT NOT NULL DEFAULT '',
    checksum     TEXT NOT NULL DEFAULT '',
    package      TEXT NOT NULL DEFAULT '',
    description  TEXT NOT NULL DEFAULT '',
    known_bad    BOOLEAN NOT NULL DEFAULT FALSE,
    bad_reason   TEXT NOT NULL DEFAULT '',
    added_at     {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    UNIQUE (component_id, version)
);

-- fw_release_issues are the CVEs and advisories a release fixes.
CREATE TABLE fw_release_issues (
    release_id BIGINT NOT NULL REFERENCES fw_releases (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    issue      TEXT NOT NULL,
    PRIMARY KEY (release_id, issue)
);
CREATE INDEX fw_release_issues_issue ON fw_release_issues (issue);

-- fw_hosts are the machines of the fleet; model is the hardware model that
-- targets are approved for; rack and zone are the failure domains rollouts use.
CREATE TABLE fw_hosts (
    id      {{ID}},
    name    TEXT NOT NULL UNIQUE,
    model   TEXT NOT NULL DEFAULT '',
    rack    TEXT NOT NULL DEFAULT '',
    zone    TEXT NOT NULL DEFAULT '',
    bmc     TEXT NOT NULL DEFAULT '',
    seen_at {{TIMESTAMP}}
);

-- fw_host_components is what was last observed on a host: one row per slot
-- (BIOS, nvme0, eth1, ...), with where and when it was read.
CREATE TABLE fw_host_components (
    host_id      BIGINT NOT NULL REFERENCES fw_hosts (id) ON DELETE CASCADE,
    slot         TEXT NOT NULL,
    component_id BIGINT NOT NULL REFERENCES fw_components (id) ON DELETE CASCADE,
    version      TEXT NOT NULL,
    source       TEXT NOT NULL DEFAULT '',
    observed_at  {{TIMESTAMP}} NOT NULL,
    PRIMARY KEY (host_id, slot)
);
CREATE INDEX fw_host_components_component ON fw_host_components (component_id, version);

-- fw_targets is the approved release per (host model, component).
CREATE TABLE fw_targets (
    model        TEXT NOT NULL,
    component_id BIGINT NOT NULL REFERENCES fw_components (id) ON DELETE CASCADE,
    release_id   BIGINT NOT NULL REFERENCES fw_releases (id) ON DELETE CASCADE,
    approved_at  {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    PRIMARY KEY (model, component_id)
);

-- fw_rollouts are staged installs of one release; plan is the JSON plan
-- (phases, limits, windows, hooks) so a restarted controller resumes it.
CREATE TABLE fw_rollouts (
    id          {{ID}},
    name        TEXT NOT NULL,
    release_id  BIGINT NOT NULL REFERENCES fw_releases (id) ON DELETE CASCADE,
    state       TEXT NOT NULL,
    phase       INTEGER NOT NULL DEFAULT 0,
    plan        TEXT NOT NULL,
    halt_reason TEXT NOT NULL DEFAULT '',
    created_at  {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}},
    updated_at  {{TIMESTAMP}} NOT NULL DEFAULT {{NOW}}
);

-- fw_rollout_hosts is every host of a rollout with its phase and state; a
-- host leaves "pending" exactly once, which is how a resumed controller
-- never touches a host twice.
CREATE TABLE fw_rollout_hosts (
    rollout_id  BIGINT NOT NULL REFERENCES fw_rollouts (id) ON DELETE CASCADE,
    host_id     BIGINT NOT NULL REFERENCES fw_hosts (id) ON DELETE CASCADE,
    phase       INTEGER NOT NULL,
    state       TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    started_at  {{TIMESTAMP}},
    finished_at {{TIMESTAMP}},
    PRIMARY KEY (rollout_id, host_id)
);
CREATE INDEX fw_rollout_hosts_phase ON fw_rollout_hosts (rollout_id, phase, state);

-- +goose Down
DROP TABLE fw_rollout_hosts;
DROP TABLE fw_rollouts;
DROP TABLE fw_targets;
DROP TABLE fw_host_components;
DROP TABLE fw_hosts;
DROP TABLE fw_release_issues;
DROP TABLE fw_releases;
DROP TABLE fw_components;
