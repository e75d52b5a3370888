-- mamori store schema v12 (sqlite): the containers running on each node as
-- its node agent reports them (issue 11 item 7), so that the runtime
-- vulnerability view covers hosts without Kubernetes: joined with images
-- by manifest digest (image_key = 'digest:' || image_digest). Each report
-- is the node's whole list; last_seen moves with every report.
-- Keep in step with ../postgres/00012_node_containers.sql. See nodecontainers.go.

-- +goose Up
CREATE TABLE node_containers (
    cluster      TEXT    NOT NULL,
    node         TEXT    NOT NULL,
    container_id TEXT    NOT NULL,
    name         TEXT    NOT NULL DEFAULT '',
    image        TEXT    NOT NULL DEFAULT '',
    image_digest TEXT    NOT NULL DEFAULT '',
    runtime      TEXT    NOT NULL DEFAULT '',
    namespace    TEXT    NOT NULL DEFAULT '',
    pod          TEXT    NOT NULL DEFAULT '',
    started      INTEGER NOT NULL DEFAULT 0,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    PRIMARY KEY (cluster, node, container_id)
);
CREATE INDEX node_containers_digest ON node_containers (image_digest);
CREATE INDEX node_containers_seen ON node_containers (last_seen);

-- +goose Down
DROP TABLE node_containers;
