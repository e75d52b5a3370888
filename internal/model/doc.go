// Package model is mamori's leaf data model: scan results and their
// targets, the package inventory, vulnerabilities, findings, severities and
// security events, with their validation and sort orders.
//
// It imports nothing of mamori, so that every component (the scan CLI, the
// server, the cluster component, the node agent) can share it without
// linking the scanner, the store or a transport. The JSON tags here are the
// documented output schema (docs/json-output.md, docs/events.md).
package model
