package policies

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mamori/internal/auth"
	"mamori/internal/policy"
	"mamori/internal/service"
	"mamori/internal/store"
)

var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func newService(t *testing.T) (*Service, store.Store, *bytes.Buffer) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "mamori.db"), store.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &bytes.Buffer{}
	return New(st, slog.New(slog.NewTextHandler(logs, nil)), func() time.Time { return now }), st, logs
}

func as(role auth.Role, cluster string) context.Context {
	return auth.WithPrincipal(context.Background(), &auth.Principal{TokenID: 7, TokenName: "alice", Role: role, Cluster: cluster})
}

const doc = `apiVersion: mamori.dev/v1
kind: Policy
name: prod
description: production
unknownImages: {action: scan}
admission:
  - {name: baseline, action: block, podSecurity: {level: baseline}}
  - {name: kev, action: block, vulnerabilities: {knownExploited: true}}
compliance:
  - {name: crit, action: isolate, match: {namespaces: [prod-*], selector: {matchLabels: {tier: web}}}, vulnerabilities: {severity: critical}}
runtime:
  - {ruleset: default, rules: {crypto-miner-binary: terminate}}
exceptions:
  - {name: old, reason: legacy, expires: '2026-10-31', namespaces: [legacy]}
  - {name: cve, reason: not reachable, vulnerabilities: [CVE-2024-1]}
`

func TestApplyAndRead(t *testing.T) {
	s, st, logs := newService(t)
	ctx := as(auth.RoleAdmin, "")
	a, err := s.Apply(ctx, "prod.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Created || !a.Changed || a.Version.Version != 1 || a.Version.CreatedBy != "alice" || !strings.HasPrefix(a.Version.Digest, "sha256:") {
		t.Fatalf("applied %+v", a)
	}
	if len(a.Warnings) != 0 { // knownExploited reads the KEV data the model now carries
		t.Errorf("warnings %v", a.Warnings)
	}
	sum := a.Summary
	if sum.UnknownImages != "scan" || sum.OnScanFailure != "allow" || len(sum.Rules) != 3 || sum.Rules[0].Criterion != "podSecurity (baseline)" ||
		sum.Rules[2].Section != "compliance" || sum.Rules[2].Scope != "namespaces prod-*; selector tier=web" ||
		len(sum.Exceptions) != 2 || !sum.Exceptions[0].Expired || sum.Exceptions[1].Expired || sum.Runtime[0].Rules["crypto-miner-binary"] != "terminate" {
		t.Errorf("summary %+v", sum)
	}
	if !strings.Contains(logs.String(), "policy applied") || !strings.Contains(logs.String(), "by=alice") {
		t.Errorf("no audit line: %s", logs)
	}
	// The same document: no new version.
	a, err = s.Apply(ctx, "prod.yaml", []byte(doc))
	if err != nil || a.Created || a.Changed || a.Version.Version != 1 {
		t.Fatalf("re-apply %+v %v", a, err)
	}
	a, err = s.Apply(ctx, "prod.yaml", []byte(strings.Replace(doc, "description: production", "description: production v2", 1)))
	if err != nil || a.Created || !a.Changed || a.Version.Version != 2 || a.Latest != 2 {
		t.Fatalf("new version %+v %v", a, err)
	}
	old, err := s.GetVersion(ctx, "prod", 1)
	if err != nil || old.Summary.Description != "production" || old.Latest != 2 || old.Version.Document != doc {
		t.Fatalf("version 1: %+v %v", old, err)
	}
	vs, err := s.Versions(ctx, "prod")
	if err != nil || len(vs) != 2 {
		t.Fatalf("versions %v %v", vs, err)
	}
	// Assignment and the component's view of it.
	c, err := st.CreateCluster(context.Background(), "eu-1", now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ForComponent(as(auth.RoleCluster, "eu-1")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("no policy yet: %v", err)
	}
	if got, err := s.Assign(ctx, c.ID, "prod"); err != nil || got.Policy != "prod" {
		t.Fatalf("assign %+v %v", got, err)
	}
	for _, role := range []auth.Role{auth.RoleCluster, auth.RoleAgent} {
		v, err := s.ForComponent(as(role, "eu-1"))
		if err != nil || v.Version != 2 || v.Policy != "prod" {
			t.Errorf("%s: %+v %v", role, v, err)
		}
	}
	if _, err := s.ForComponent(as(auth.RoleAdmin, "")); !errors.Is(err, auth.ErrForbidden) {
		t.Errorf("admin: %v", err)
	}
	if _, err := s.ForComponent(as(auth.RoleAgent, "")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("bare-host agent: %v", err)
	}
	g, err := s.Get(ctx, "prod")
	if err != nil || len(g.Clusters) != 1 || g.Clusters[0] != "eu-1" {
		t.Fatalf("get %+v %v", g, err)
	}
	if err := s.Delete(ctx, "prod"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("delete in use: %v", err)
	}
	if _, err := s.Assign(ctx, c.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	if ps, err := s.List(ctx); err != nil || len(ps) != 0 {
		t.Errorf("list after delete %v %v", ps, err)
	}
}

func TestApplyRefusesBadPolicies(t *testing.T) {
	s, _, _ := newService(t)
	ctx := as(auth.RoleAdmin, "")
	for _, tc := range []struct{ doc, want string }{
		{"apiVersion: mamori.dev/v1\nkind: Policy\nname: p\nadmission:\n  - {name: r, action: deny, privileged: {}}\n", "p.yaml:5:"},
		{"apiVersion: mamori.dev/v1\nkind: Policy\nname: p\nadmission:\n  - name: r\n    action: block\n    cel: 'vulnerabilities.all(a, vulnerabilities.exists(b, a.id == b.id))'\n",
			"p.yaml:7:10: admission[0].cel: too expensive"},
		{strings.Repeat("#", policy.MaxPolicySize+1), "exceeds"},
		{"", "empty policy"},
	} {
		_, err := s.Apply(ctx, "dir/p.yaml", []byte(tc.doc))
		if !errors.Is(err, service.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
	if _, err := s.Apply(ctx, "bad\nname", []byte(doc)); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("file name with a newline: %v", err)
	}
	if _, err := s.GetVersion(ctx, "p", 0); !errors.Is(err, service.ErrInvalid) {
		t.Errorf("version 0: %v", err)
	}
	if _, err := s.Get(ctx, "p"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("absent: %v", err)
	}
}
