package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"mamori/internal/api"
	"mamori/internal/model"
)

// Receipt is the server's answer to an accepted scan upload.
type Receipt struct {
	api.IngestOutcome
	// Attempts is how many requests it took.
	Attempts int
}

// UploadScan sends a scan result (POST /api/v1/scans) and returns the
// server's receipt once the server has committed it. A result that fails
// model validation is refused before anything is sent. Retrying is safe:
// the server de-duplicates by image digest and scan ID (a retried upload
// answers "duplicate").
func (c *Client) UploadScan(ctx context.Context, res *model.Result) (Receipt, error) {
	if err := res.Validate(time.Now()); err != nil {
		return Receipt{}, fmt.Errorf("client: not uploading an invalid result: %w", err)
	}
	var out api.IngestOutcome
	n, err := c.call(ctx, http.MethodPost, api.PathScans, nil, res, &out, true)
	if err != nil {
		return Receipt{}, err
	}
	return Receipt{IngestOutcome: out, Attempts: n}, nil
}

// IngestEvents delivers events (POST /api/v1/events) in batches of at most
// api.MaxEventBatch events and about half of api.MaxEventBytes, and sums
// the server's answers. Rejection indexes are positions in events. Every
// batch is retried as a whole: the server stores an event ID once, so a
// batch that was committed but whose answer was lost counts its events as
// duplicates the second time. On an error, the batches before the failing
// one were delivered: the returned result counts them.
func (c *Client) IngestEvents(ctx context.Context, events []model.Event) (api.EventIngestResult, error) {
	total := api.EventIngestResult{Rejected: []api.EventRejection{}}
	// A batch's encoded size is bounded before compression: the server
	// caps both, and a batch near the cap is re-split rather than refused.
	const maxBatchBytes = api.MaxEventBytes / 2
	start := 0
	for start < len(events) {
		end, size := start, 0
		for end < len(events) && end-start < api.MaxEventBatch {
			b, err := json.Marshal(&events[end])
			if err != nil {
				return total, fmt.Errorf("client: encode event %d: %w", end, err)
			}
			if end > start && int64(size+len(b)+1) > maxBatchBytes {
				break
			}
			size += len(b) + 1
			end++
		}
		var out api.EventIngestResult
		if _, err := c.call(ctx, http.MethodPost, api.PathEvents, nil, api.EventBatch{Events: events[start:end]}, &out, true); err != nil {
			return total, err
		}
		total.Accepted += out.Accepted
		total.Duplicates += out.Duplicates
		for _, r := range out.Rejected {
			r.Index += start
			total.Rejected = append(total.Rejected, r)
		}
		start = end
	}
	return total, nil
}

// ListEvents reads a page of events (GET /api/v1/events) with the filters
// in query (api.EventParam* names; api.EventParamCursor continues a listing).
func (c *Client) ListEvents(ctx context.Context, query url.Values) (api.EventPage, error) {
	var out api.EventPage
	_, err := c.call(ctx, http.MethodGet, api.PathEvents, query, nil, &out, true)
	return out, err
}

// Whoami returns the caller's token and role (GET /api/v1/whoami).
func (c *Client) Whoami(ctx context.Context) (api.Whoami, error) {
	var out api.Whoami
	_, err := c.call(ctx, http.MethodGet, api.PathWhoami, nil, nil, &out, true)
	return out, err
}

// RegisterCluster registers the cluster component of the token's cluster
// (POST /api/v1/clusters/register); call it at start.
func (c *Client) RegisterCluster(ctx context.Context, r api.ClusterReport) (api.Cluster, error) {
	var out api.Cluster
	_, err := c.call(ctx, http.MethodPost, api.PathClusterRegister, nil, r, &out, true)
	return out, err
}

// ClusterHeartbeat records the cluster component's contact (POST
// /api/v1/clusters/heartbeat).
func (c *Client) ClusterHeartbeat(ctx context.Context, r api.ClusterReport) (api.Cluster, error) {
	var out api.Cluster
	_, err := c.call(ctx, http.MethodPost, api.PathClusterHeartbeat, nil, r, &out, true)
	return out, err
}

// ClusterConfig fetches the cluster component's configuration (GET /api/v1/clusters/config).
func (c *Client) ClusterConfig(ctx context.Context) (api.ComponentConfig, error) {
	var out api.ComponentConfig
	_, err := c.call(ctx, http.MethodGet, api.PathClusterConfig, nil, nil, &out, true)
	return out, err
}

// RegisterAgent registers a node agent (POST /api/v1/agents/register);
// call it at start. Registering again updates what the agent reported.
func (c *Client) RegisterAgent(ctx context.Context, r api.AgentReport) (api.Agent, error) {
	var out api.Agent
	_, err := c.call(ctx, http.MethodPost, api.PathAgentRegister, nil, r, &out, true)
	return out, err
}

// AgentHeartbeat records a node agent's contact (POST
// /api/v1/agents/heartbeat). An error matching ErrNotFound means the server
// does not know the agent (deleted by an admin, or a new database):
// register again.
func (c *Client) AgentHeartbeat(ctx context.Context, r api.AgentReport) (api.Agent, error) {
	var out api.Agent
	_, err := c.call(ctx, http.MethodPost, api.PathAgentHeartbeat, nil, r, &out, true)
	return out, err
}

// AgentConfig fetches the node agent's configuration (GET /api/v1/agents/config).
func (c *Client) AgentConfig(ctx context.Context) (api.ComponentConfig, error) {
	var out api.ComponentConfig
	_, err := c.call(ctx, http.MethodGet, api.PathAgentConfig, nil, nil, &out, true)
	return out, err
}

// Match sends an inventory the component took (POST /api/v1/match) and
// returns what the server's vulnerability database finds in it. It is
// read-only on the server, so it is retried like the other calls. An
// error matching ErrRejected with status 409 means the server has no
// vulnerability database yet.
func (c *Client) Match(ctx context.Context, inv *model.Inventory) (api.MatchResult, error) {
	if inv == nil {
		return api.MatchResult{}, fmt.Errorf("client: nil inventory")
	}
	if err := inv.Validate(); err != nil {
		return api.MatchResult{}, fmt.Errorf("client: not sending an invalid inventory: %w", err)
	}
	var out api.MatchResult
	_, err := c.call(ctx, http.MethodPost, api.PathMatch, nil, api.MatchRequest{Inventory: *inv}, &out, true)
	return out, err
}
