package store

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"mamori/internal/model"
)

func podObj(ns, name, uid, owner string, containers ...RunningContainer) ClusterObject {
	o := ClusterObject{ObjectRef: ObjectRef{Kind: KindPod, Namespace: ns, Name: name, UID: uid}, Node: "node-1", Phase: "Running",
		Labels: map[string]string{"app": name}, Containers: containers, Body: []byte(`{"kind":"Pod","metadata":{"name":"` + name + `"}}`)}
	if owner != "" {
		o.OwnerKind, o.OwnerName = "Deployment", owner
	}
	return o
}

func objectNames(t *testing.T, s *sqlStore, cluster, kind string) []string {
	t.Helper()
	p, err := s.ListClusterObjects(context.Background(), ObjectFilter{Cluster: cluster, Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range p.Objects {
		out = append(out, o.Namespace+"/"+o.Name)
	}
	return out
}

func runningRows(t *testing.T, s *sqlStore) []string {
	t.Helper()
	rows, err := s.db.Query(`SELECT cluster || ' ' || namespace || '/' || pod || '/' || container || ' ' || workload_kind || '/' ||
		workload_name || ' ' || image_digest FROM running_containers ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestInventoryResync checks incremental batches and full resyncs: the end
// of a resync drops what an older generation wrote (deleted while no watch
// saw it), running containers follow their pods, and the batch is idempotent.
func TestInventoryResync(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		d1, d2 := dg("sha256:a1"), dg("sha256:a2")
		web := podObj("shop", "web-1", "u1", "web", RunningContainer{Name: "nginx", Image: "nginx:1", ImageDigest: d1, Running: true},
			RunningContainer{Name: "init", Image: "busybox", Kind: "init"})
		db := podObj("shop", "db-0", "u2", "", RunningContainer{Name: "pg", Image: "pg:16", ImageDigest: d2, Running: true})
		ns := ClusterObject{ObjectRef: ObjectRef{Kind: KindNamespace, Name: "shop", UID: "n1"}, Labels: map[string]string{"env": "prod"}}
		b1 := InventoryBatch{Generation: 1, Begin: true, End: true, Objects: []ClusterObject{ns, web, db}}
		out, err := s.ApplyInventory(ctx, "prod", b1, t0)
		if err != nil || out.Upserted != 3 {
			t.Fatalf("first resync: %+v %v", out, err)
		}
		// Applying the same batch again changes nothing.
		if _, err := s.ApplyInventory(ctx, "prod", b1, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if got := objectNames(t, s, "prod", KindPod); !slices.Equal(got, []string{"shop/db-0", "shop/web-1"}) {
			t.Fatalf("pods %v", got)
		}
		want := []string{"prod shop/db-0/pg Pod/db-0 " + d2, "prod shop/web-1/nginx Deployment/web " + d1}
		if got := runningRows(t, s); !slices.Equal(got, want) {
			t.Fatalf("running %v, want %v", got, want)
		}
		// Another cluster's objects are its own.
		if _, err := s.ApplyInventory(ctx, "dev", InventoryBatch{Generation: 7, Objects: []ClusterObject{web}}, t0); err != nil {
			t.Fatal(err)
		}
		// An incremental deletion with a UID of another pod of the same name deletes nothing.
		out, err = s.ApplyInventory(ctx, "prod", InventoryBatch{Generation: 1, Deleted: []ObjectRef{{Kind: KindPod, Namespace: "shop", Name: "db-0", UID: "other"}}}, t0)
		if err != nil || out.Deleted != 0 {
			t.Fatalf("delete by wrong UID: %+v %v", out, err)
		}
		// A resync that no longer lists db-0 (deleted while the component was down) drops it at its end, not before.
		if _, err := s.ApplyInventory(ctx, "prod", InventoryBatch{Generation: 2, Begin: true, Objects: []ClusterObject{ns}}, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got := objectNames(t, s, "prod", KindPod); len(got) != 2 {
			t.Fatalf("pods mid-resync %v", got)
		}
		out, err = s.ApplyInventory(ctx, "prod", InventoryBatch{Generation: 2, End: true, Objects: []ClusterObject{web}}, t0.Add(2*time.Minute))
		if err != nil || out.Removed != 1 {
			t.Fatalf("end of resync: %+v %v", out, err)
		}
		if got := objectNames(t, s, "prod", KindPod); !slices.Equal(got, []string{"shop/web-1"}) {
			t.Fatalf("pods after resync %v", got)
		}
		want = []string{"dev shop/web-1/nginx Deployment/web " + d1, "prod shop/web-1/nginx Deployment/web " + d1}
		if got := runningRows(t, s); !slices.Equal(got, want) {
			t.Fatalf("running after resync %v, want %v", got, want)
		}
		sy, err := s.InventorySync(ctx, "prod")
		if err != nil || sy.Generation != 2 || !sy.SyncedAt.Equal(t0.Add(2*time.Minute)) || !sy.BegunAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("sync %+v %v", sy, err)
		}
		// A pod's container that changes image gets the new digest; one without a digest (not started) is not running.
		web2 := web
		web2.Containers = []RunningContainer{{Name: "nginx", Image: "nginx:2", ImageDigest: d2}, {Name: "side", Image: "x"}}
		if _, err := s.ApplyInventory(ctx, "prod", InventoryBatch{Generation: 2, Objects: []ClusterObject{web2}}, t0.Add(3*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got := runningRows(t, s); !slices.Contains(got, "prod shop/web-1/nginx Deployment/web "+d2) || len(got) != 2 {
			t.Fatalf("running after update %v", got)
		}
		digests, err := s.RunningImageDigests(ctx, "prod")
		if err != nil || !slices.Equal(digests, []string{d2}) {
			t.Fatalf("digests %v %v", digests, err)
		}
		// The body round-trips; counts by kind.
		o, err := s.GetClusterObject(ctx, "prod", KindPod, "shop", "web-1")
		if err != nil || string(o.Body) != string(web.Body) || o.OwnerName != "web" || o.Labels["app"] != "web-1" || len(o.Containers) != 2 {
			t.Fatalf("get %+v %v", o, err)
		}
		if _, err := s.GetClusterObject(ctx, "prod", KindPod, "shop", "db-0"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted pod: %v", err)
		}
		counts, err := s.ClusterObjectCounts(ctx, "prod")
		if err != nil || counts[KindPod] != 1 || counts[KindNamespace] != 1 {
			t.Fatalf("counts %v %v", counts, err)
		}
		var seen []string
		if err := s.EachClusterObject(ctx, "prod", KindPod, func(o ClusterObject) error {
			seen = append(seen, o.Name+":"+string(o.Body[:5]))
			return nil
		}); err != nil || !slices.Equal(seen, []string{"web-1:{\"kin"}) {
			t.Fatalf("each %v %v", seen, err)
		}
		// Bad input is refused whole.
		bad := podObj("shop", "evil", "u9", "")
		bad.Body = []byte("{not json")
		if _, err := s.ApplyInventory(ctx, "prod", InventoryBatch{Generation: 2, Objects: []ClusterObject{bad}}, t0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad JSON: %v", err)
		}
		bad = podObj("shop", "evil\x00", "u9", "")
		if _, err := s.ApplyInventory(ctx, "prod", InventoryBatch{Generation: 2, Objects: []ClusterObject{bad}}, t0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("NUL name: %v", err)
		}
	})
}

// TestRuntimeVulnerabilityView checks the running filter of the
// vulnerability list and the workloads of a vulnerability's detail: only
// images whose digest runs count, and deleting the cluster removes them.
func TestRuntimeVulnerabilityView(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		mustIngest(t, s, result("shop/web:1", "sha256:a1", "s1", t0, []model.Vulnerability{
			vuln("CVE-2024-0001", "openssl", model.SeverityCritical, 9.8, "3.0.1"),
			vuln("CVE-2024-0002", "zlib", model.SeverityLow, 3.1, ""),
		}))
		mustIngest(t, s, result("shop/old:1", "sha256:b1", "s2", t0, []model.Vulnerability{
			vuln("CVE-2024-0003", "curl", model.SeverityHigh, 7.5, "8.0"),
		}))
		if _, err := s.CreateCluster(ctx, "prod", t0); err != nil {
			t.Fatal(err)
		}
		web := podObj("shop", "web-1", "u1", "web", RunningContainer{Name: "web", Image: "shop/web:1", ImageDigest: dg("sha256:a1"), Running: true})
		if _, err := s.ApplyInventory(ctx, "prod", InventoryBatch{Generation: 1, Begin: true, End: true, Objects: []ClusterObject{web}}, t0); err != nil {
			t.Fatal(err)
		}
		list := func(f VulnerabilityFilter) []string {
			t.Helper()
			p, err := s.ListVulnerabilities(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, v := range p.Vulnerabilities {
				out = append(out, v.ID)
			}
			return out
		}
		if got := list(VulnerabilityFilter{Running: true}); !slices.Equal(got, []string{"CVE-2024-0001", "CVE-2024-0002"}) {
			t.Fatalf("running %v", got)
		}
		if got := list(VulnerabilityFilter{}); len(got) != 3 {
			t.Fatalf("all %v", got)
		}
		min := 5.0
		if got := list(VulnerabilityFilter{Running: true, CVSSMin: &min, Query: "openssl"}); !slices.Equal(got, []string{"CVE-2024-0001"}) {
			t.Fatalf("running cvss>=5 openssl %v", got)
		}
		if got := list(VulnerabilityFilter{Running: true, Cluster: "dev"}); len(got) != 0 {
			t.Fatalf("running in another cluster %v", got)
		}
		d, err := s.GetVulnerability(ctx, "CVE-2024-0001", Page{})
		if err != nil || len(d.Workloads) != 1 {
			t.Fatalf("detail %+v %v", d, err)
		}
		w := d.Workloads[0]
		if w.Cluster != "prod" || w.Namespace != "shop" || w.Kind != "Deployment" || w.Name != "web" || w.Container != "web" || !w.LastDetected.Equal(t0) {
			t.Fatalf("workload %+v", w)
		}
		if d, _ := s.GetVulnerability(ctx, "CVE-2024-0003", Page{}); len(d.Workloads) != 0 {
			t.Fatalf("a vulnerability of an image that does not run lists %v", d.Workloads)
		}
		// Image lookup by the references pods write.
		im, scanID, err := s.FindImage(ctx, "", []string{"shop/web:1"})
		if err != nil || im.Digest != dg("sha256:a1") || scanID != "s1" {
			t.Fatalf("find by name: %+v %q %v", im, scanID, err)
		}
		if im, _, err := s.FindImage(ctx, dg("sha256:b1"), nil); err != nil || im.Name != "shop/old:1" {
			t.Fatalf("find by digest: %+v %v", im, err)
		}
		if _, _, err := s.FindImage(ctx, "", []string{"shop/none:1", `100%_"`}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("find unknown: %v", err)
		}
		c, err := s.GetClusterByName(ctx, "prod")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteCluster(ctx, c.ID, t0); err != nil {
			t.Fatal(err)
		}
		if got := list(VulnerabilityFilter{Running: true}); len(got) != 0 {
			t.Fatalf("running after the cluster was deleted %v", got)
		}
	})
}

// TestNodeContainers (issue 11 item 7): the containers a node agent
// reports (a bare host's: no cluster) count as running in the runtime
// vulnerability view and are listed on a vulnerability's detail with their
// node, name, image, digest and last seen; each report replaces the node's
// list; a container not reported within NodeContainerTTL does not count;
// expiry and deleting the agent remove them.
func TestNodeContainers(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		mustIngest(t, s, result("shop/web:1", "sha256:a1", "s1", t0, []model.Vulnerability{
			vuln("CVE-2024-0001", "openssl", model.SeverityCritical, 9.8, "3.0.1"),
		}))
		mustIngest(t, s, result("shop/old:1", "sha256:b1", "s2", t0, []model.Vulnerability{
			vuln("CVE-2024-0003", "curl", model.SeverityHigh, 7.5, "8.0"),
		}))
		list := func(f VulnerabilityFilter) []string {
			t.Helper()
			p, err := s.ListVulnerabilities(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, v := range p.Vulnerabilities {
				out = append(out, v.ID)
			}
			return out
		}
		if got := list(VulnerabilityFilter{Running: true}); len(got) != 0 {
			t.Fatalf("running before any report: %v", got)
		}
		a, err := s.RegisterAgent(ctx, Agent{Node: "bare-1", LastContact: t0})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		started := now.Add(-time.Hour)
		out, err := s.ReplaceNodeContainers(ctx, "", "bare-1", []NodeContainer{
			{ID: "c1", Name: "web", Image: "shop/web:1", ImageDigest: dg("sha256:a1"), Runtime: "containerd", Namespace: "default", Started: started},
			{ID: "c2", Name: "unscanned", Image: "x:1", ImageDigest: dg("sha256:ff"), Runtime: "docker"},
		}, now)
		if err != nil || out != (NodeContainersOutcome{Running: 2, Added: 2}) {
			t.Fatalf("first report: %+v %v", out, err)
		}
		if got := list(VulnerabilityFilter{Running: true}); !slices.Equal(got, []string{"CVE-2024-0001"}) {
			t.Fatalf("running with a bare host's container: %v", got)
		}
		if got := list(VulnerabilityFilter{Running: true, Cluster: "prod"}); len(got) != 0 {
			t.Fatalf("running in cluster prod: %v", got)
		}
		d, err := s.GetVulnerability(ctx, "CVE-2024-0001", Page{})
		if err != nil || len(d.HostContainers) != 1 || len(d.Workloads) != 0 {
			t.Fatalf("detail: %+v %v", d, err)
		}
		hc := d.HostContainers[0]
		if hc.Node != "bare-1" || hc.Cluster != "" || hc.Name != "web" || hc.ID != "c1" || hc.ImageDigest != dg("sha256:a1") ||
			hc.Runtime != "containerd" || !hc.LastSeen.Equal(now) || !hc.FirstSeen.Equal(now) || !hc.Started.Equal(started) || hc.ImageID == 0 {
			t.Fatalf("host container: %+v", hc)
		}
		// The next report: c2 ended, c3 (the old image) new, c1 seen again.
		later := now.Add(time.Minute)
		out, err = s.ReplaceNodeContainers(ctx, "", "bare-1", []NodeContainer{
			{ID: "c1", Name: "web", Image: "shop/web:1", ImageDigest: dg("sha256:a1"), Runtime: "containerd"},
			{ID: "c3", Name: "old", Image: "shop/old:1", ImageDigest: dg("sha256:b1"), Runtime: "containerd"},
		}, later)
		if err != nil || out != (NodeContainersOutcome{Running: 2, Added: 1, Ended: 1}) {
			t.Fatalf("second report: %+v %v", out, err)
		}
		cs, err := s.ListNodeContainers(ctx, dg("sha256:a1"), time.Time{})
		if err != nil || len(cs) != 1 || !cs[0].FirstSeen.Equal(now) || !cs[0].LastSeen.Equal(later) {
			t.Fatalf("c1 after the second report: %+v %v", cs, err)
		}
		if got := list(VulnerabilityFilter{Running: true}); !slices.Equal(got, []string{"CVE-2024-0001", "CVE-2024-0003"}) {
			t.Fatalf("running after the second report: %v", got)
		}
		// Another agent's node of the same name in a cluster is another node.
		if _, err := s.ReplaceNodeContainers(ctx, "prod", "bare-1", nil, later); err != nil {
			t.Fatal(err)
		}
		if all, _ := s.ListNodeContainers(ctx, "", time.Time{}); len(all) != 2 {
			t.Fatalf("a cluster node's empty report touched the bare host's: %+v", all)
		}
		// Not reported for longer than the TTL: not running.
		if _, err := s.ReplaceNodeContainers(ctx, "", "bare-1", []NodeContainer{
			{ID: "c1", ImageDigest: dg("sha256:a1"), Runtime: "containerd"}}, now.Add(-NodeContainerTTL-time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got := list(VulnerabilityFilter{Running: true}); len(got) != 0 {
			t.Fatalf("running from a stale report: %v", got)
		}
		if d, _ := s.GetVulnerability(ctx, "CVE-2024-0001", Page{}); len(d.HostContainers) != 0 {
			t.Fatalf("stale host containers listed: %+v", d.HostContainers)
		}
		if n, err := s.ExpireNodeContainers(ctx, now.Add(-NodeContainerTTL)); err != nil || n != 1 {
			t.Fatalf("expire: %d %v", n, err)
		}
		// Bad values refused, nothing stored.
		if _, err := s.ReplaceNodeContainers(ctx, "", "bare-1", []NodeContainer{{ID: "ok"}, {ID: "bad\x00"}}, now); !errors.Is(err, ErrInvalid) {
			t.Fatalf("NUL in an ID: %v", err)
		}
		if _, err := s.ReplaceNodeContainers(ctx, "", "", nil, now); !errors.Is(err, ErrInvalid) {
			t.Fatalf("no node: %v", err)
		}
		// Deleting the agent deletes its containers.
		if _, err := s.ReplaceNodeContainers(ctx, "", "bare-1", []NodeContainer{{ID: "c1", ImageDigest: dg("sha256:a1")}}, now); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteAgent(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if all, _ := s.ListNodeContainers(ctx, "", time.Time{}); len(all) != 0 {
			t.Fatalf("after the agent was deleted: %+v", all)
		}
	})
}

func TestMitigations(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		m := Mitigation{Cluster: "prod", Action: "isolate", Namespace: "shop", Pod: "web-1", PodUID: "u1", Node: "node-1",
			Source: "runtime", Rule: "shell", EventID: "ev1", RequestedBy: "agent node-1", CreatedAt: t0}
		a, created, err := s.CreateMitigation(ctx, m)
		if err != nil || !created || a.State != MitigationPending || a.ID == 0 {
			t.Fatalf("create %+v %v %v", a, created, err)
		}
		// The same event and action is one request.
		b, created, err := s.CreateMitigation(ctx, m)
		if err != nil || created || b.ID != a.ID {
			t.Fatalf("again %+v %v %v", b, created, err)
		}
		m2 := m
		m2.Action, m2.EventID, m2.CreatedAt = "terminate", "", t0.Add(time.Second)
		c, _, err := s.CreateMitigation(ctx, m2)
		if err != nil {
			t.Fatal(err)
		}
		other := m
		other.Cluster, other.EventID = "dev", "ev2"
		if _, _, err := s.CreateMitigation(ctx, other); err != nil {
			t.Fatal(err)
		}
		p, err := s.PendingMitigations(ctx, "prod", 10)
		if err != nil || len(p) != 2 || p[0].ID != a.ID || p[1].ID != c.ID {
			t.Fatalf("pending %+v %v", p, err)
		}
		done, err := s.CompleteMitigation(ctx, "prod", a.ID, MitigationDone, "", "NetworkPolicy shop/mamori-quarantine-web-1", t0.Add(time.Minute))
		if err != nil || done.State != MitigationDone || done.Detail == "" || !done.DoneAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("complete %+v %v", done, err)
		}
		// A second report keeps the first outcome; another cluster cannot complete it.
		again, err := s.CompleteMitigation(ctx, "prod", a.ID, MitigationFailed, "late", "", t0.Add(2*time.Minute))
		if err != nil || again.State != MitigationDone {
			t.Fatalf("second report %+v %v", again, err)
		}
		if _, err := s.CompleteMitigation(ctx, "dev", a.ID, MitigationDone, "", "", t0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("other cluster: %v", err)
		}
		if _, err := s.CompleteMitigation(ctx, "prod", a.ID, "maybe", "", "", t0); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bad state: %v", err)
		}
		p, _ = s.PendingMitigations(ctx, "prod", 10)
		if len(p) != 1 || p[0].ID != c.ID {
			t.Fatalf("pending after completion %+v", p)
		}
		all, err := s.ListMitigations(ctx, MitigationFilter{Cluster: "prod"})
		if err != nil || len(all) != 2 || all[0].ID != c.ID {
			t.Fatalf("list %+v %v", all, err)
		}
		if all, _ := s.ListMitigations(ctx, MitigationFilter{State: MitigationDone}); len(all) != 1 {
			t.Fatalf("list done %+v", all)
		}
	})
}

func TestComplianceRecord(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		v := func(uid, rule string) ComplianceViolation {
			return ComplianceViolation{PodUID: uid, Rule: rule, Namespace: "shop", Pod: "p-" + uid, Action: "log", EventID: "e-" + uid + rule}
		}
		run := ComplianceRun{Cluster: "prod", Policy: "default", PolicyVersion: 1, EvaluatedAt: t0, Pods: 3}
		added, err := s.RecordCompliance(ctx, run, []ComplianceViolation{v("u1", "pss"), v("u2", "pss"), v("u1", "pss")})
		if err != nil || len(added) != 2 {
			t.Fatalf("first run: %+v %v", added, err)
		}
		run.EvaluatedAt, run.PolicyVersion = t0.Add(time.Minute), 2
		added, err = s.RecordCompliance(ctx, run, []ComplianceViolation{v("u1", "pss"), v("u1", "vulns")})
		if err != nil || len(added) != 1 || added[0].Rule != "vulns" {
			t.Fatalf("second run: %+v %v", added, err)
		}
		vs, err := s.ComplianceViolations(ctx, "prod")
		if err != nil || len(vs) != 2 || !vs[0].FirstSeen.Equal(t0) || !vs[0].LastSeen.Equal(t0.Add(time.Minute)) || vs[0].EventID != "e-u1pss" {
			t.Fatalf("violations %+v %v", vs, err)
		}
		r, err := s.ComplianceRun(ctx, "prod")
		if err != nil || r.PolicyVersion != 2 || r.Violations != 2 || r.Pods != 3 {
			t.Fatalf("run %+v %v", r, err)
		}
		if r, err := s.ComplianceRun(ctx, "nowhere"); err != nil || !r.EvaluatedAt.IsZero() {
			t.Fatalf("no run %+v %v", r, err)
		}
	})
}
