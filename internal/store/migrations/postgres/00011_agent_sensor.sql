-- mamori store schema v11 (postgres): what each node agent's runtime sensor
-- is (issue 11): its mode (ebpf, fallback), how its programs attach, and
-- the event kinds the mode cannot report (comma-separated), as the agent's
-- last registration or heartbeat said. Shown on the console's Hosts page.
-- Keep in step with ../sqlite/00011_agent_sensor.sql. See identities.go.

-- +goose Up
ALTER TABLE agents ADD COLUMN sensor_mode TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN sensor_hooks TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN sensor_missing TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE agents DROP COLUMN sensor_missing;
ALTER TABLE agents DROP COLUMN sensor_hooks;
ALTER TABLE agents DROP COLUMN sensor_mode;
