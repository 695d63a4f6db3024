-- +goose Up
-- perf captures name the process and the sampling frequency as fields of the
-- request (they were labels "pid" and "frequency" before); 0 means the whole
-- host and the agent's default frequency.
ALTER TABLE profiling_captures ADD COLUMN pid BIGINT NOT NULL DEFAULT 0;
ALTER TABLE profiling_captures ADD COLUMN frequency INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE profiling_captures DROP COLUMN frequency;
ALTER TABLE profiling_captures DROP COLUMN pid;
