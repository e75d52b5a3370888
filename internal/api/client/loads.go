package client

import (
	"context"
	"net/http"

	"mamori/internal/api"
)

// ReportLoads sends what the node's containers executed or loaded (POST
// /api/v1/agents/loads). Retrying is safe: the server keeps a set of
// paths per container, so a report stored twice counts its paths as
// duplicates the second time. The caller keeps a report within
// api.MaxLoadReportPaths paths and api.MaxLoadReportContainers containers.
func (c *Client) ReportLoads(ctx context.Context, r api.LoadReport) (api.LoadReportResult, error) {
	var out api.LoadReportResult
	_, err := c.call(ctx, http.MethodPost, api.PathAgentLoads, nil, r, &out, true)
	return out, err
}

// ReportContainers sends every container running on the agent's node now
// (PUT /api/v1/agents/containers): the runtime vulnerability view of hosts
// without Kubernetes.
func (c *Client) ReportContainers(ctx context.Context, r api.NodeContainersReport) (api.NodeContainersResult, error) {
	var out api.NodeContainersResult
	_, err := c.call(ctx, http.MethodPut, api.PathAgentContainers, nil, r, &out, true)
	return out, err
}
