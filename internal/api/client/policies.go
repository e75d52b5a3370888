package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"mamori/internal/api"
)

// policyPath fills a policy path's {name} (and {version}).
func policyPath(pattern, name string, version int) string {
	p := strings.Replace(pattern, "{name}", url.PathEscape(name), 1)
	return strings.Replace(p, "{version}", strconv.Itoa(version), 1)
}

// ApplyPolicy applies a policy document (POST /api/v1/policies); file
// names it in the server's error messages. Retrying is safe: the same
// document again stores no new version.
func (c *Client) ApplyPolicy(ctx context.Context, file string, document []byte) (api.PolicyApplied, error) {
	var out api.PolicyApplied
	_, err := c.call(ctx, http.MethodPost, api.PathPolicies, nil, api.PolicyApply{File: file, Document: string(document)}, &out, true)
	return out, err
}

// ListPolicies lists the policies (GET /api/v1/policies).
func (c *Client) ListPolicies(ctx context.Context) (api.PolicyList, error) {
	var out api.PolicyList
	_, err := c.call(ctx, http.MethodGet, api.PathPolicies, nil, nil, &out, true)
	return out, err
}

// GetPolicy reads a policy at its latest version, or at version when it is
// positive.
func (c *Client) GetPolicy(ctx context.Context, name string, version int) (api.Policy, error) {
	path := policyPath(api.PathPolicy, name, 0)
	if version > 0 {
		path = policyPath(api.PathPolicyVersion, name, version)
	}
	var out api.Policy
	_, err := c.call(ctx, http.MethodGet, path, nil, nil, &out, true)
	return out, err
}

// PolicyVersions lists a policy's versions, newest first.
func (c *Client) PolicyVersions(ctx context.Context, name string) (api.PolicyVersionList, error) {
	var out api.PolicyVersionList
	_, err := c.call(ctx, http.MethodGet, policyPath(api.PathPolicyVersions, name, 0), nil, nil, &out, true)
	return out, err
}

// DeletePolicy deletes a policy (refused while a cluster enforces it).
func (c *Client) DeletePolicy(ctx context.Context, name string) error {
	_, err := c.call(ctx, http.MethodDelete, policyPath(api.PathPolicy, name, 0), nil, nil, nil, true)
	return err
}

// ListClusters lists the clusters (GET /api/v1/clusters).
func (c *Client) ListClusters(ctx context.Context) (api.ClusterList, error) {
	var out api.ClusterList
	_, err := c.call(ctx, http.MethodGet, api.PathClusters, nil, nil, &out, true)
	return out, err
}

// AssignClusterPolicy makes a cluster enforce a policy ("" for none).
func (c *Client) AssignClusterPolicy(ctx context.Context, clusterID int64, policy string) (api.Cluster, error) {
	var out api.Cluster
	path := strings.Replace(api.PathClusterPolicyAssign, "{id}", fmt.Sprint(clusterID), 1)
	_, err := c.call(ctx, http.MethodPut, path, nil, api.ClusterPolicyRequest{Policy: policy}, &out, true)
	return out, err
}

// ClusterPolicy fetches the policy the cluster component's cluster
// enforces (GET /api/v1/clusters/policy); an error matching ErrNotFound
// means none is assigned.
func (c *Client) ClusterPolicy(ctx context.Context) (api.ComponentPolicy, error) {
	var out api.ComponentPolicy
	_, err := c.call(ctx, http.MethodGet, api.PathClusterPolicy, nil, nil, &out, true)
	return out, err
}

// AgentPolicy fetches the policy the node agent's cluster enforces (GET
// /api/v1/agents/policy); ErrNotFound when none is assigned.
func (c *Client) AgentPolicy(ctx context.Context) (api.ComponentPolicy, error) {
	var out api.ComponentPolicy
	_, err := c.call(ctx, http.MethodGet, api.PathAgentPolicy, nil, nil, &out, true)
	return out, err
}
