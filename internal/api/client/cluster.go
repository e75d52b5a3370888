package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"mamori/internal/api"
	"mamori/internal/model"
)

// The cluster component's data calls (api/clusters.go).

// LookupImages returns what the server knows of each image reference
// (POST /api/v1/clusters/images/lookup), in the order asked: a read,
// retried like one.
func (c *Client) LookupImages(ctx context.Context, refs []string) (api.ImageLookupResult, error) {
	var out api.ImageLookupResult
	if len(refs) > api.MaxImageLookup {
		return out, fmt.Errorf("client: %d images in one lookup: at most %d", len(refs), api.MaxImageLookup)
	}
	_, err := c.call(ctx, http.MethodPost, api.PathClusterImageLookup, nil, api.ImageLookup{Images: refs}, &out, true)
	if err == nil && len(out.Images) != len(refs) {
		return out, fmt.Errorf("client: image lookup answered %d images for %d asked", len(out.Images), len(refs))
	}
	return out, err
}

// UploadClusterScan sends an image's inventory and findings, taken by the
// cluster component (POST /api/v1/clusters/scans); the server matches it
// against its vulnerability database, stores it and returns the image's
// scan data. Retrying is safe (the server de-duplicates by digest and scan ID).
func (c *Client) UploadClusterScan(ctx context.Context, res *model.Result) (api.ClusterScanOutcome, error) {
	var out api.ClusterScanOutcome
	if err := res.Validate(time.Now()); err != nil {
		return out, fmt.Errorf("client: not uploading an invalid result: %w", err)
	}
	_, err := c.call(ctx, http.MethodPost, api.PathClusterScans, nil, res, &out, true)
	return out, err
}

// SendInventory delivers one inventory batch (POST
// /api/v1/clusters/inventory). Batches are idempotent (upserts and
// deletions by name): a retried batch changes nothing more.
func (c *Client) SendInventory(ctx context.Context, b api.InventoryBatch) (api.InventoryResult, error) {
	var out api.InventoryResult
	if n := len(b.Objects) + len(b.Deleted); n > api.MaxInventoryObjects {
		return out, fmt.Errorf("client: %d objects in one inventory batch: at most %d", n, api.MaxInventoryObjects)
	}
	_, err := c.call(ctx, http.MethodPost, api.PathClusterInventory, nil, b, &out, true)
	return out, err
}

// PendingMitigations returns the isolate/terminate requests the calling
// cluster component has to execute (GET /api/v1/clusters/mitigations), oldest first.
func (c *Client) PendingMitigations(ctx context.Context) ([]api.Mitigation, error) {
	var out api.MitigationList
	_, err := c.call(ctx, http.MethodGet, api.PathClusterMitigations, nil, nil, &out, true)
	return out.Mitigations, err
}

// ReportMitigation records what the cluster component did about request
// id (POST /api/v1/clusters/mitigations/{id}); reporting twice keeps the
// first outcome.
func (c *Client) ReportMitigation(ctx context.Context, id int64, o api.MitigationOutcome) (api.Mitigation, error) {
	var out api.Mitigation
	path := strings.Replace(api.PathClusterMitigation, "{id}", strconv.FormatInt(id, 10), 1)
	_, err := c.call(ctx, http.MethodPost, path, nil, o, &out, true)
	return out, err
}

// RequestMitigation asks for a pod on the agent's node to be isolated or
// terminated by the cluster component (POST /api/v1/agents/mitigations).
// Retrying is safe: the server keeps one request per event ID and action.
func (c *Client) RequestMitigation(ctx context.Context, r api.MitigationRequest) (api.Mitigation, error) {
	var out api.Mitigation
	_, err := c.call(ctx, http.MethodPost, api.PathAgentMitigations, nil, r, &out, true)
	return out, err
}

// ListMitigations lists isolate/terminate requests, newest first (GET
// /api/v1/mitigations; query: cluster, state, limit).
func (c *Client) ListMitigations(ctx context.Context, query url.Values) ([]api.Mitigation, error) {
	var out api.MitigationList
	_, err := c.call(ctx, http.MethodGet, api.PathMitigations, query, nil, &out, true)
	return out.Mitigations, err
}

// ClusterObjects reads a page of a cluster's inventory (GET
// /api/v1/clusters/{id}/inventory; query: kind, namespace, q, limit, offset).
func (c *Client) ClusterObjects(ctx context.Context, clusterID int64, query url.Values) (api.ClusterObjects, error) {
	var out api.ClusterObjects
	path := strings.Replace(api.PathClusterObjects, "{id}", strconv.FormatInt(clusterID, 10), 1)
	_, err := c.call(ctx, http.MethodGet, path, query, nil, &out, true)
	return out, err
}

// DBInfo describes the server's vulnerability database (GET /api/v1/db).
func (c *Client) DBInfo(ctx context.Context) (api.DBInfo, error) {
	var out api.DBInfo
	_, err := c.call(ctx, http.MethodGet, api.PathDB, nil, nil, &out, true)
	return out, err
}

// Rematch has the server open a changed database and re-match every
// stored inventory (POST /api/v1/rematch), in the background.
func (c *Client) Rematch(ctx context.Context) error {
	_, err := c.call(ctx, http.MethodPost, api.PathRematch, nil, nil, nil, true)
	return err
}

// ListVulnerabilities reads a page of vulnerabilities (GET
// /api/v1/vulnerabilities; running=true for the runtime vulnerability view).
func (c *Client) ListVulnerabilities(ctx context.Context, query url.Values) (api.VulnerabilityPage, error) {
	var out api.VulnerabilityPage
	_, err := c.call(ctx, http.MethodGet, api.PathVulnerabilities, query, nil, &out, true)
	return out, err
}

// GetVulnerability reads one vulnerability with its affected packages and
// the workloads running them (GET /api/v1/vulnerabilities/{id}).
func (c *Client) GetVulnerability(ctx context.Context, id string) (api.VulnerabilityDetail, error) {
	var out api.VulnerabilityDetail
	path := strings.Replace(api.PathVulnerability, "{id}", url.PathEscape(id), 1)
	_, err := c.call(ctx, http.MethodGet, path, nil, nil, &out, true)
	return out, err
}
