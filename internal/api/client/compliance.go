package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"mamori/internal/api"
	"mamori/internal/compliance/posture"
)

// ReportNodePosture sends a node agent's posture (POST
// /api/v1/agents/posture; an agent token): collect it with
// compliance/node.Collect, with the host inventory the agent took. The
// server matches the inventory and answers what it found. Idempotent: a
// node's posture replaces the one before.
func (c *Client) ReportNodePosture(ctx context.Context, n *posture.Node) (api.PostureResult, error) {
	if err := n.Validate(); err != nil {
		return api.PostureResult{}, fmt.Errorf("client: not sending an invalid node posture: %w", err)
	}
	var out api.PostureResult
	_, err := c.call(ctx, http.MethodPost, api.PathAgentPosture, nil, n, &out, true)
	return out, err
}

// ReportClusterPosture sends a cluster component's posture (POST
// /api/v1/clusters/posture; a cluster token): collect it with
// compliance/kube.Collect. Idempotent.
func (c *Client) ReportClusterPosture(ctx context.Context, p *posture.Cluster) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("client: not sending an invalid cluster posture: %w", err)
	}
	_, err := c.call(ctx, http.MethodPost, api.PathClusterPosture, nil, p, nil, true)
	return err
}

// ComplianceReport downloads a report (GET /api/v1/compliance/report) of
// standard ("" = nist-800-190) in format (json, html or pdf) and returns
// its bytes.
func (c *Client) ComplianceReport(ctx context.Context, standard, format string) ([]byte, error) {
	q := url.Values{}
	if standard != "" {
		q.Set(api.ComplianceParamStandard, standard)
	}
	if format != "" {
		q.Set(api.ComplianceParamFormat, format)
	}
	return c.download(ctx, api.PathComplianceReport, q)
}

// ComplianceHistory lists a standard's snapshots, newest first.
func (c *Client) ComplianceHistory(ctx context.Context, standard string, limit int) (api.ComplianceHistory, error) {
	q := url.Values{}
	if standard != "" {
		q.Set(api.ComplianceParamStandard, standard)
	}
	if limit > 0 {
		q.Set(api.ComplianceParamLimit, strconv.Itoa(limit))
	}
	var out api.ComplianceHistory
	_, err := c.call(ctx, http.MethodGet, api.PathComplianceHistory, q, nil, &out, true)
	return out, err
}

// ComplianceAssess re-assesses every standard now (operator or admin).
func (c *Client) ComplianceAssess(ctx context.Context) (api.ComplianceAssessed, error) {
	var out api.ComplianceAssessed
	_, err := c.call(ctx, http.MethodPost, api.PathComplianceAssess, nil, nil, &out, false)
	return out, err
}

// download GETs path and returns the answer's bytes (a report in any
// format), retrying as call does.
func (c *Client) download(ctx context.Context, path string, q url.Values) ([]byte, error) {
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var last error
	wait := c.opt.retryWait
	for attempt := 1; attempt <= c.opt.attempts; attempt++ {
		b, retry, err := c.downloadOnce(ctx, path, target)
		if err == nil {
			return b, nil
		}
		last = err
		if !retry || attempt == c.opt.attempts || ctx.Err() != nil {
			break
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, fmt.Errorf("client: GET %s: %w (last error: %v)", path, err, last)
		}
		wait = min(wait*2, maxRetryWait)
	}
	return nil, last
}

func (c *Client) downloadOnce(ctx context.Context, path, target string) ([]byte, bool, error) {
	actx, cancel := context.WithTimeout(ctx, c.opt.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, target, nil)
	if err != nil {
		return nil, false, fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", c.opt.userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, ctx.Err() == nil, fmt.Errorf("client: GET %s%s: %w", c.base, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
		if err != nil {
			return nil, true, fmt.Errorf("client: GET %s: read answer: %w", path, err)
		}
		return b, false, nil
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Method: http.MethodGet, Path: path, StatusCode: resp.StatusCode, Status: resp.Status, Message: serverMessage(data)}
	return nil, retryable(resp.StatusCode), fmt.Errorf("client: %w", e)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
