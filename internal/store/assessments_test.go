package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestAssessmentEvidence(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		stamp := func() string {
			t.Helper()
			st, err := s.EvidenceStamp(ctx)
			if err != nil || len(st) != 12 {
				t.Fatal(st, err)
			}
			return fmt.Sprint(st)
		}
		s0 := stamp()

		// Node postures: replaced per (cluster, node); a host match is
		// refused for a posture that was replaced meanwhile.
		np := NodePosture{Cluster: "c1", Node: "n1", CollectedAt: t0, ReceivedAt: t0, Body: `{"node":"n1"}`}
		if err := s.PutNodePosture(ctx, np); err != nil {
			t.Fatal(err)
		}
		if err := s.PutNodePosture(ctx, NodePosture{Cluster: "", Node: "bare", CollectedAt: t0, ReceivedAt: t0, Body: `{}`}); err != nil {
			t.Fatalf("bare host: %v", err)
		}
		s1 := stamp()
		if s1 == s0 {
			t.Error("stamp did not move with a node posture")
		}
		m := HostMatch{Vulns: `[{"id":"CVE-1"}]`, DBBuiltAt: t0.Add(-time.Hour), MatchedAt: t0.Add(time.Second)}
		if err := s.PutHostMatch(ctx, "c1", "n1", t0, m); err != nil {
			t.Fatal(err)
		}
		if err := s.PutHostMatch(ctx, "c1", "n1", t0.Add(-time.Minute), m); !errors.Is(err, ErrStale) {
			t.Errorf("stale match: %v", err)
		}
		if err := s.PutHostMatch(ctx, "c1", "nx", t0, m); !errors.Is(err, ErrNotFound) {
			t.Errorf("match of an unknown node: %v", err)
		}
		nps, err := s.NodePostures(ctx)
		if err != nil || len(nps) != 2 || nps[1].Node != "n1" || nps[1].Vulns != m.Vulns || !nps[1].DBBuiltAt.Equal(m.DBBuiltAt) {
			t.Fatalf("node postures: %+v %v", nps, err)
		}
		np.ReceivedAt, np.Body = t0.Add(time.Hour), `{"node":"n1","v":2}`
		if err := s.PutNodePosture(ctx, np); err != nil {
			t.Fatal(err)
		}
		if nps, _ = s.NodePostures(ctx); nps[1].Body != np.Body || nps[1].Vulns != "" {
			t.Fatalf("replaced posture keeps the old match: %+v", nps[1])
		}
		for _, bad := range []NodePosture{{Node: "", Body: "{}"}, {Node: "n", Body: ""}, {Node: "n", Body: "a\x00b"}} {
			if err := s.PutNodePosture(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: %v", bad, err)
			}
		}

		// Cluster postures.
		if err := s.PutClusterPosture(ctx, ClusterPosture{Cluster: "c1", CollectedAt: t0, ReceivedAt: t0, Body: `{"cluster":"c1"}`}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutClusterPosture(ctx, ClusterPosture{Cluster: "c1", CollectedAt: t0, ReceivedAt: t0.Add(time.Minute), Body: `{"v":2}`}); err != nil {
			t.Fatal(err)
		}
		cps, err := s.ClusterPostures(ctx)
		if err != nil || len(cps) != 1 || cps[0].Body != `{"v":2}` {
			t.Fatalf("cluster postures: %+v %v", cps, err)
		}
		s2 := stamp()
		if s2 == s1 {
			t.Error("stamp did not move with a cluster posture")
		}

		// Registry probes go with their registry.
		reg, err := s.CreateRegistry(ctx, Registry{Name: "r", URL: "https://r.example", CreatedAt: t0, UpdatedAt: t0})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.PutRegistryProbe(ctx, reg.ID, t0, `{"tls":true}`); err != nil {
			t.Fatal(err)
		}
		if err := s.PutRegistryProbe(ctx, reg.ID+100, t0, `{}`); !errors.Is(err, ErrNotFound) {
			t.Errorf("probe of an unknown registry: %v", err)
		}
		probes, err := s.RegistryProbes(ctx)
		if err != nil || len(probes) != 1 || probes[reg.ID].Body != `{"tls":true}` {
			t.Fatalf("probes: %+v %v", probes, err)
		}
		if err := s.DeleteRegistry(ctx, reg.ID); err != nil {
			t.Fatal(err)
		}
		if probes, _ = s.RegistryProbes(ctx); len(probes) != 0 {
			t.Errorf("probe outlived its registry: %+v", probes)
		}

		// Signatures: the newest per digest, or per digest and trust.
		d := "sha256:" + strings.Repeat("a", 64)
		for i, v := range []ImageSignature{
			{Digest: d, Trust: "k1", Image: "r/a:1", Verified: false, Reason: "no signature", VerifiedAt: t0},
			{Digest: d, Trust: "k2", Image: "r/a:1", Verified: true, Signer: "key:abc", VerifiedAt: t0.Add(time.Minute)},
			{Digest: d, Trust: "k1", Image: "r/a:1", Verified: true, Signer: "key:def", VerifiedAt: t0.Add(2 * time.Minute)},
		} {
			if err := s.PutImageSignature(ctx, v); err != nil {
				t.Fatalf("signature %d: %v", i, err)
			}
		}
		sigs, err := s.ImageSignatures(ctx, "")
		if err != nil || len(sigs) != 1 || sigs[0].Signer != "key:def" {
			t.Fatalf("newest signature: %+v %v", sigs, err)
		}
		sigs, err = s.ImageSignatures(ctx, "k2")
		if err != nil || len(sigs) != 1 || sigs[0].Signer != "key:abc" || !sigs[0].Verified {
			t.Fatalf("signature under k2: %+v %v", sigs, err)
		}
		if stamp() == s2 {
			t.Error("stamp did not move with signatures and registries")
		}
	})
}

func TestAssessmentSnapshots(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		if _, err := s.LatestAssessment(ctx, "nist-800-190"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("latest of none: %v", err)
		}
		var ids []int64
		for i := range 7 {
			id, err := s.AddAssessment(ctx, Assessment{Standard: "nist-800-190", GeneratedAt: t0.Add(time.Duration(i) * time.Hour),
				Cause: "schedule", Pass: i, Fail: 23 - i, Groups: `[]`, Digest: fmt.Sprint(i), Report: fmt.Sprintf(`{"n":%d}`, i)}, 5)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if _, err := s.AddAssessment(ctx, Assessment{Standard: "cis-docker", GeneratedAt: t0, Groups: `[]`, Report: `{}`}, 5); err != nil {
			t.Fatal(err)
		}
		as, err := s.Assessments(ctx, "nist-800-190", 100)
		if err != nil || len(as) != 5 || as[0].Pass != 6 || as[4].Pass != 2 || as[0].Report != "" {
			t.Fatalf("kept snapshots: %+v %v", as, err)
		}
		a, err := s.LatestAssessment(ctx, "nist-800-190")
		if err != nil || a.ID != ids[6] || a.Report != `{"n":6}` || !a.GeneratedAt.Equal(t0.Add(6*time.Hour)) {
			t.Fatalf("latest: %+v %v", a, err)
		}
		if _, err := s.GetAssessment(ctx, ids[0]); !errors.Is(err, ErrNotFound) {
			t.Errorf("pruned snapshot: %v", err)
		}
		if a, err := s.GetAssessment(ctx, ids[3]); err != nil || a.Report != `{"n":3}` {
			t.Errorf("snapshot 3: %+v %v", a, err)
		}
		if _, err := s.AddAssessment(ctx, Assessment{Standard: "x", Report: `{}`}, 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("no time: %v", err)
		}
	})
}

func TestImageBuiltAt(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		r := result("reg.example/app:1", "sha256:b1", "scan-1", t0, nil)
		r.Target.Created = t0.Add(-400 * 24 * time.Hour)
		mustIngest(t, s, r)
		out := mustIngest(t, s, result("reg.example/app:2", "sha256:b2", "scan-2", t0, nil))
		bt, err := s.ImageBuildTimes(context.Background())
		if err != nil || len(bt) != 1 || bt[out.ImageID] != (time.Time{}) {
			t.Fatalf("built at: %+v %v", bt, err)
		}
		for _, at := range bt {
			if !at.Equal(r.Target.Created) {
				t.Fatalf("built at %v, want %v", at, r.Target.Created)
			}
		}
	})
}
