package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"mamori/internal/api"
)

// Host protection (issue 12): the node agent's calls (its host group's
// settings and requests, its allow-list, its reports) and the admin calls
// over host groups, allow-lists, requests and the views.

func nodeQuery(node string) url.Values { return url.Values{api.HostParamNode: {node}} }

func idPath(pattern string, id int64) string {
	return strings.Replace(pattern, "{id}", strconv.FormatInt(id, 10), 1)
}

// HostConfig fetches the calling agent's host group, settings and pending
// requests (GET /api/v1/agents/host). ErrNotFound: register again.
func (c *Client) HostConfig(ctx context.Context, node string) (api.HostConfig, error) {
	var out api.HostConfig
	_, err := c.call(ctx, http.MethodGet, api.PathAgentHost, nodeQuery(node), nil, &out, true)
	return out, err
}

// HostAllowList fetches the calling agent's group's allow-list.
func (c *Client) HostAllowList(ctx context.Context, node string) (api.AllowList, error) {
	var out api.AllowList
	_, err := c.call(ctx, http.MethodGet, api.PathAgentHostAllowList, nodeQuery(node), nil, &out, true)
	return out, err
}

// ReportLearned sends what the agent learned to its group's allow-list, in
// batches of at most api.MaxAllowListBatch entries (adding is idempotent:
// retried). The result sums the batches.
func (c *Client) ReportLearned(ctx context.Context, node string, entries []api.AllowListEntry) (api.AllowListChange, error) {
	var total api.AllowListChange
	for start := 0; start < len(entries) || start == 0; start += api.MaxAllowListBatch {
		end := min(start+api.MaxAllowListBatch, len(entries))
		var out api.AllowListChange
		if _, err := c.call(ctx, http.MethodPost, api.PathAgentHostAllowList, nodeQuery(node), api.AllowListAdd{Entries: entries[start:end]}, &out, true); err != nil {
			return total, err
		}
		total.Group, total.Revision, total.Entries = out.Group, out.Revision, out.Entries
		total.Added += out.Added
		if end == len(entries) {
			break
		}
	}
	return total, nil
}

// ReportQuarantine sends the agent's whole quarantine (PUT, idempotent).
func (c *Client) ReportQuarantine(ctx context.Context, node string, rep api.QuarantineReport) error {
	if rep.Entries == nil {
		rep.Entries = []api.QuarantineEntry{}
	}
	_, err := c.call(ctx, http.MethodPut, api.PathAgentHostQuarantine, nodeQuery(node), rep, nil, true)
	return err
}

// ReportBaseline sends a summary of the agent's integrity baseline (PUT).
func (c *Client) ReportBaseline(ctx context.Context, node string, rep api.BaselineReport) error {
	_, err := c.call(ctx, http.MethodPut, api.PathAgentHostBaseline, nodeQuery(node), rep, nil, true)
	return err
}

// HostRequestResult reports the agent's outcome of request id. A retry
// after a lost answer gets ErrRejected (409: no longer pending), which
// means the first attempt was recorded.
func (c *Client) HostRequestResult(ctx context.Context, node string, id int64, res api.HostRequestResult) (api.HostRequest, error) {
	var out api.HostRequest
	_, err := c.call(ctx, http.MethodPost, idPath(api.PathAgentHostRequest, id), nodeQuery(node), res, &out, true)
	return out, err
}

// CheckConnection proves the server can be reached now: one request over
// a new connection (TCP and TLS handshakes, certificate verified), never a
// pooled one, so that a firewall change that lets established
// connections through but refuses new ones is caught. It is the agent's
// confirmation of a firewall change (safe apply). No retry: the caller's
// deadline decides.
func (c *Client) CheckConnection(ctx context.Context) error {
	hc := &http.Client{Transport: c.hc.Transport, Timeout: c.hc.Timeout}
	if tr, ok := c.hc.Transport.(*http.Transport); ok {
		fresh := tr.Clone()
		fresh.DisableKeepAlives = true
		defer fresh.CloseIdleConnections()
		hc.Transport = fresh
	} else if c.hc.Transport == nil {
		fresh := http.DefaultTransport.(*http.Transport).Clone()
		fresh.DisableKeepAlives = true
		defer fresh.CloseIdleConnections()
		hc.Transport = fresh
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+api.PathHealth, nil)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Close = true
	req.Header.Set("User-Agent", c.opt.userAgent)
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("client: server %s not reachable: %w", c.base, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("client: server %s answered %s to %s", c.base, resp.Status, api.PathHealth)
	}
	c.opt.log.Debug("server reachable on a new connection", "in", time.Since(start))
	return nil
}

// Admin calls.

// ListHostGroups lists the host groups.
func (c *Client) ListHostGroups(ctx context.Context) (api.HostGroupList, error) {
	var out api.HostGroupList
	_, err := c.call(ctx, http.MethodGet, api.PathHostGroups, nil, nil, &out, true)
	return out, err
}

// CreateHostGroup creates a host group (not retried: a retry after a lost
// answer would conflict).
func (c *Client) CreateHostGroup(ctx context.Context, req api.HostGroupRequest) (api.HostGroup, error) {
	var out api.HostGroup
	_, err := c.call(ctx, http.MethodPost, api.PathHostGroups, nil, req, &out, false)
	return out, err
}

// UpdateHostGroup replaces a group's description, cluster and settings.
func (c *Client) UpdateHostGroup(ctx context.Context, id int64, req api.HostGroupRequest) (api.HostGroup, error) {
	var out api.HostGroup
	_, err := c.call(ctx, http.MethodPut, idPath(api.PathHostGroup, id), nil, req, &out, true)
	return out, err
}

// PlaceAgent puts an agent in the named group ("" takes it out).
func (c *Client) PlaceAgent(ctx context.Context, agentID int64, group string) (api.HostGroup, error) {
	var out api.HostGroup
	_, err := c.call(ctx, http.MethodPut, idPath(api.PathAgentHostGroup, agentID), nil, api.HostPlacement{Group: group}, &out, true)
	return out, err
}

// AddAllowEntries adds entries to a group's allow-list.
func (c *Client) AddAllowEntries(ctx context.Context, groupID int64, entries []api.AllowListEntry) (api.AllowListChange, error) {
	var out api.AllowListChange
	_, err := c.call(ctx, http.MethodPost, idPath(api.PathHostGroupAllowList, groupID), nil, api.AllowListAdd{Entries: entries}, &out, true)
	return out, err
}

// GroupAllowList reads a group's allow-list.
func (c *Client) GroupAllowList(ctx context.Context, groupID int64) (api.AllowList, error) {
	var out api.AllowList
	_, err := c.call(ctx, http.MethodGet, idPath(api.PathHostGroupAllowList, groupID), nil, nil, &out, true)
	return out, err
}

// CreateHostRequest asks an agent to do something (not retried: a retry
// would queue the request twice).
func (c *Client) CreateHostRequest(ctx context.Context, agentID int64, req api.HostRequestCreate) (api.HostRequest, error) {
	var out api.HostRequest
	_, err := c.call(ctx, http.MethodPost, idPath(api.PathAgentRequests, agentID), nil, req, &out, false)
	return out, err
}

// HostRequests lists an agent's requests, newest first.
func (c *Client) HostRequests(ctx context.Context, agentID int64) (api.HostRequestList, error) {
	var out api.HostRequestList
	_, err := c.call(ctx, http.MethodGet, idPath(api.PathAgentRequests, agentID), nil, nil, &out, true)
	return out, err
}

// Quarantine lists the quarantined files agents reported (agentID 0: all).
func (c *Client) Quarantine(ctx context.Context, agentID int64) (api.QuarantineList, error) {
	var q url.Values
	if agentID > 0 {
		q = url.Values{api.HostParamAgent: {strconv.FormatInt(agentID, 10)}}
	}
	var out api.QuarantineList
	_, err := c.call(ctx, http.MethodGet, api.PathQuarantine, q, nil, &out, true)
	return out, err
}

// Baselines lists every agent's last baseline summary.
func (c *Client) Baselines(ctx context.Context) (api.BaselineList, error) {
	var out api.BaselineList
	_, err := c.call(ctx, http.MethodGet, api.PathBaselines, nil, nil, &out, true)
	return out, err
}

// ListAgents lists the registered agents.
func (c *Client) ListAgents(ctx context.Context) (api.AgentList, error) {
	var out api.AgentList
	_, err := c.call(ctx, http.MethodGet, api.PathAgents, nil, nil, &out, true)
	return out, err
}
