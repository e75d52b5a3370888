package compliance_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/service"
	"mamori/internal/service/compliance"
	"mamori/internal/service/events"
	"mamori/internal/service/images"
	"mamori/internal/service/inventory"
	"mamori/internal/service/mitigations"
	"mamori/internal/store"
)

type env struct {
	st   store.Store
	inv  *inventory.Service
	mit  *mitigations.Service
	comp *compliance.Service
	now  time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "mamori.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{st: st, now: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return e.now }
	ev := events.New(st, events.Retention{}, nil, clock)
	e.inv = inventory.New(st, nil, clock)
	e.mit = mitigations.New(st, nil, clock)
	e.comp = compliance.New(st, ev, e.mit, images.New(st, nil, clock), compliance.Config{Period: time.Hour}, nil, clock)
	if _, err := st.CreateCluster(context.Background(), "prod", e.now); err != nil {
		t.Fatal(err)
	}
	return e
}

func clusterCtx(cluster string) context.Context {
	return auth.WithPrincipal(context.Background(), &auth.Principal{TokenID: 1, TokenName: "cluster " + cluster, Role: auth.RoleCluster, Cluster: cluster})
}

func digest(s string) string {
	h := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(h[:])
}

// pod returns a running pod object as the component reports it.
func pod(name, uid, image string, privileged bool) api.InventoryObject {
	sc := ""
	if privileged {
		sc = `,"securityContext":{"privileged":true}`
	}
	body := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":"shop","uid":%q,"labels":{"app":"web"}},
		"spec":{"containers":[{"name":"web","image":%q%s}]}}`, name, uid, image, sc)
	return api.InventoryObject{InventoryRef: api.InventoryRef{Kind: "Pod", Namespace: "shop", Name: name, UID: uid}, Node: "node-1",
		Phase: "Running", Owner: &model.WorkloadRef{Kind: "Deployment", Name: "web"}, Object: []byte(body),
		Containers: []api.InventoryContainer{{Name: "web", Image: image, ImageDigest: digest(image), ContainerID: "containerd://" + uid, Running: true}}}
}

func (e *env) applyPolicy(t *testing.T, doc string) {
	t.Helper()
	sum := sha256.Sum256([]byte(doc))
	if _, _, err := e.st.PutPolicy(context.Background(), store.PolicyPut{Name: "p", Document: doc, Digest: hex.EncodeToString(sum[:]), At: e.now}); err != nil {
		t.Fatal(err)
	}
	c, err := e.st.GetClusterByName(context.Background(), "prod")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.SetClusterPolicy(context.Background(), c.ID, "p"); err != nil {
		t.Fatal(err)
	}
}

const policyHead = "apiVersion: mamori.dev/v1\nkind: Policy\nname: p\n"

func (e *env) events(t *testing.T, source model.EventSource) []store.EventRecord {
	t.Helper()
	p, err := e.st.ListEvents(context.Background(), store.EventFilter{Source: string(source), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return p.Events
}

// TestComplianceFlips: a running compliant pod becomes a violation when
// the policy changes and when the image's findings change (a re-match),
// each reported once as an event with its rule and evidence, and the
// rule's isolate or terminate queued for the cluster component.
func TestComplianceFlips(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	img := "registry.example.com/shop/web:1"
	if _, err := e.inv.Ingest(clusterCtx("prod"), api.InventoryBatch{Generation: 1, Begin: true, End: true, Objects: []api.InventoryObject{
		{InventoryRef: api.InventoryRef{Kind: "Namespace", Name: "shop"}, Labels: map[string]string{"env": "prod"}},
		pod("web-1", "u1", img, false), pod("web-2", "u2", img, true)}}); err != nil {
		t.Fatal(err)
	}
	// No policy: nothing evaluated, nothing violated.
	out, err := e.comp.Check(ctx, "prod", false)
	if err != nil || !out.Evaluated || len(out.Added) != 0 {
		t.Fatalf("no policy: %+v %v", out, err)
	}
	// A policy logging privileged pods: web-2 violates, reported once.
	e.applyPolicy(t, policyHead+"compliance:\n  - {name: no-privileged, action: log, privileged: {}}\n")
	out, err = e.comp.Check(ctx, "prod", false)
	if err != nil || len(out.Added) != 1 || out.Added[0].Pod != "web-2" || out.Run.Pods != 2 {
		t.Fatalf("first policy: %+v %v", out, err)
	}
	evs := e.events(t, model.SourceCompliance)
	if len(evs) != 1 {
		t.Fatalf("events %+v", evs)
	}
	ev := evs[0].Event
	if ev.Rule.ID != "no-privileged" || ev.Rule.Policy != "p" || ev.Pod != "web-2" || ev.Cluster != "prod" || ev.Action != model.ActionLog ||
		ev.Workload == nil || ev.Workload.Name != "web" || !strings.Contains(ev.Message, "spec.containers[0].securityContext.privileged") {
		t.Fatalf("event %+v", ev)
	}
	// Nothing changed: no evaluation; forced: the same violation is not reported again.
	if out, err := e.comp.Check(ctx, "prod", false); err != nil || out.Evaluated {
		t.Fatalf("unchanged: %+v %v", out, err)
	}
	if out, err := e.comp.Check(ctx, "prod", true); err != nil || len(out.Added) != 0 {
		t.Fatalf("forced: %+v %v", out, err)
	}
	// A policy change: critical vulnerabilities terminate; the image is scanned with none yet.
	e.applyPolicy(t, policyHead+"compliance:\n  - {name: no-privileged, action: isolate, privileged: {}}\n"+
		"  - {name: critical, action: terminate, vulnerabilities: {severity: critical}}\n")
	res := &model.Result{SchemaVersion: model.SchemaVersion, Tool: model.Tool{Name: "mamori"}, ScanID: "s1", CreatedAt: e.now.Add(-time.Hour),
		Target:    model.Target{Name: img, Type: model.TargetImage, Digest: digest(img)},
		Inventory: model.Inventory{Packages: []model.Package{{Name: "openssl", Version: "3.0.1", Type: "deb", Ecosystem: "Debian:12"}}}}
	if _, err := e.st.IngestScan(ctx, res); err != nil {
		t.Fatal(err)
	}
	out, err = e.comp.Check(ctx, "prod", false)
	if err != nil || len(out.Added) != 0 {
		// no-privileged on web-2 is the same violation (its action changed, not its existence)
		t.Fatalf("policy change without vulnerabilities: %+v %v", out, err)
	}
	// The vulnerability database changes: a re-match finds a critical vulnerability in the running image.
	im, _, err := e.st.FindImage(ctx, digest(img), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.ReplaceVulnerabilities(ctx, store.InventoryRef{ImageID: im.ID, ScanID: im.LatestScanID}, []model.Vulnerability{{
		ID: "CVE-2026-0001", Package: model.PackageRef{Name: "openssl", Version: "3.0.1", Type: "deb", Ecosystem: "Debian:12"},
		Severity: model.SeverityCritical, FixedVersion: "3.0.2"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.SetMeta(ctx, store.MetaVulnDBBuiltAt, e.now.Format(time.RFC3339Nano)); err != nil {
		t.Fatal(err)
	}
	out, err = e.comp.Check(ctx, "prod", false)
	if err != nil || len(out.Added) != 2 {
		t.Fatalf("after the re-match: %+v %v", out, err)
	}
	pending, err := e.mit.Pending(clusterCtx("prod"))
	if err != nil || len(pending) != 2 {
		t.Fatalf("pending %+v %v", pending, err)
	}
	for _, m := range pending {
		if m.Action != "terminate" || m.Source != "compliance" || m.Rule != "critical" || m.PodUID == "" || m.EventID == "" {
			t.Fatalf("mitigation %+v", m)
		}
	}
	evs = e.events(t, model.SourceCompliance)
	if len(evs) != 3 || evs[0].Event.Action != model.ActionTerminate || !strings.Contains(evs[0].Event.Message, "CVE-2026-0001") {
		t.Fatalf("events after the re-match: %+v", evs)
	}
	// The pods are gone (terminated): their violations end.
	if _, err := e.inv.Ingest(clusterCtx("prod"), api.InventoryBatch{Generation: 2, Begin: true, End: true}); err != nil {
		t.Fatal(err)
	}
	out, err = e.comp.Check(ctx, "prod", false)
	if err != nil || out.Run.Violations != 0 || out.Run.Pods != 0 {
		t.Fatalf("after the pods went: %+v %v", out, err)
	}
}

// TestMitigationScope: an agent asks only for pods on its own node, of its
// own cluster; only the cluster's component sees and completes them.
func TestMitigationScope(t *testing.T) {
	e := newEnv(t)
	if _, err := e.inv.Ingest(clusterCtx("prod"), api.InventoryBatch{Generation: 1, Objects: []api.InventoryObject{pod("web-1", "u1", "x:1", false)}}); err != nil {
		t.Fatal(err)
	}
	agent := func(cluster string) context.Context {
		return auth.WithPrincipal(context.Background(), &auth.Principal{TokenID: 2, TokenName: "agent", Role: auth.RoleAgent, Cluster: cluster})
	}
	req := api.MitigationRequest{EventID: "e1", Action: model.ActionIsolate, Node: "node-1", Namespace: "shop", Pod: "web-1", Rule: "shell"}
	m, err := e.mit.Request(agent("prod"), req)
	if err != nil || m.PodUID != "u1" || m.Source != "runtime" {
		t.Fatalf("request %+v %v", m, err)
	}
	if again, err := e.mit.Request(agent("prod"), req); err != nil || again.ID != m.ID {
		t.Fatalf("repeated request %+v %v", again, err)
	}
	other := req
	other.Node = "node-2"
	if _, err := e.mit.Request(agent("prod"), other); !errors.Is(err, auth.ErrForbidden) {
		t.Fatalf("another node's pod: %v", err)
	}
	if _, err := e.mit.Request(agent("dev"), req); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("another cluster's pod: %v", err)
	}
	bad := req
	bad.Action = model.ActionBlock
	if _, err := e.mit.Request(agent("prod"), bad); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("action block: %v", err)
	}
	if _, err := e.mit.Request(clusterCtx("prod"), req); !errors.Is(err, auth.ErrForbidden) {
		t.Fatalf("a cluster token requesting: %v", err)
	}
	if p, err := e.mit.Pending(clusterCtx("dev")); err != nil || len(p) != 0 {
		t.Fatalf("another cluster's pending: %+v %v", p, err)
	}
	if _, err := e.mit.Complete(clusterCtx("dev"), m.ID, api.MitigationOutcome{Done: true}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another cluster completing: %v", err)
	}
	if _, err := e.mit.Complete(clusterCtx("prod"), m.ID, api.MitigationOutcome{Done: false}); !errors.Is(err, service.ErrInvalid) {
		t.Fatalf("a failure without its error: %v", err)
	}
	done, err := e.mit.Complete(clusterCtx("prod"), m.ID, api.MitigationOutcome{Done: true, Detail: "NetworkPolicy shop/mamori-quarantine-web-1"})
	if err != nil || done.State != store.MitigationDone {
		t.Fatalf("complete %+v %v", done, err)
	}
}

// TestInventoryRefused: what the inventory service refuses.
func TestInventoryRefused(t *testing.T) {
	e := newEnv(t)
	cases := map[string]api.InventoryBatch{
		"no generation":     {Objects: []api.InventoryObject{pod("a", "u", "x", false)}},
		"unknown kind":      {Generation: 1, Objects: []api.InventoryObject{{InventoryRef: api.InventoryRef{Kind: "Secret", Namespace: "a", Name: "b"}}}},
		"namespace on node": {Generation: 1, Objects: []api.InventoryObject{{InventoryRef: api.InventoryRef{Kind: "Node", Namespace: "a", Name: "b"}}}},
		"bad name":          {Generation: 1, Deleted: []api.InventoryRef{{Kind: "Pod", Namespace: "a", Name: "../etc"}}},
		"bad JSON":          {Generation: 1, Objects: []api.InventoryObject{{InventoryRef: api.InventoryRef{Kind: "Pod", Namespace: "a", Name: "b"}, Object: []byte("{")}}},
		"bad digest": {Generation: 1, Objects: []api.InventoryObject{{InventoryRef: api.InventoryRef{Kind: "Pod", Namespace: "a", Name: "b"},
			Containers: []api.InventoryContainer{{Name: "c", Image: "x", ImageDigest: "sha256:zz"}}}}},
		"too many": {Generation: 1, Deleted: make([]api.InventoryRef, api.MaxInventoryObjects+1)},
	}
	for name, b := range cases {
		if _, err := e.inv.Ingest(clusterCtx("prod"), b); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	agent := auth.WithPrincipal(context.Background(), &auth.Principal{Role: auth.RoleAgent, Cluster: "prod"})
	if _, err := e.inv.Ingest(agent, api.InventoryBatch{Generation: 1}); !errors.Is(err, auth.ErrForbidden) {
		t.Errorf("agent token: %v", err)
	}
}
