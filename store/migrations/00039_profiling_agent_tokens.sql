-- +goose Up
-- profiling_agent_tokens are per-agent tokens: each lets one agent (by name)
-- register, poll and upload for itself only, and can be revoked alone. Only
-- the SHA-256 of a token is kept; the token is shown once when issued.
CREATE TABLE profiling_agent_tokens (
    agent       TEXT PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    created_ms  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE profiling_agent_tokens;
