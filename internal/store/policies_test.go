package store

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func put(name, doc string, at time.Time) PolicyPut {
	return PolicyPut{Name: name, Document: doc, Digest: "sha256:" + doc, CreatedBy: "admin", At: at}
}

func TestPolicies(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		v, changed, err := s.PutPolicy(ctx, put("prod", "doc-1", t0))
		if err != nil || !changed || v.Version != 1 || v.Document != "doc-1" || !v.CreatedAt.Equal(t0) {
			t.Fatalf("first put: %+v %v %v", v, changed, err)
		}
		// The same document again is no new version.
		v, changed, err = s.PutPolicy(ctx, put("prod", "doc-1", t0.Add(time.Minute)))
		if err != nil || changed || v.Version != 1 {
			t.Fatalf("same put: %+v %v %v", v, changed, err)
		}
		v, changed, err = s.PutPolicy(ctx, put("prod", "doc-2", t0.Add(time.Hour)))
		if err != nil || !changed || v.Version != 2 {
			t.Fatalf("second put: %+v %v %v", v, changed, err)
		}
		if _, _, err := s.PutPolicy(ctx, put("dev", "doc-a", t0)); err != nil {
			t.Fatal(err)
		}
		p, err := s.GetPolicy(ctx, "prod")
		if err != nil || p.Latest.Version != 2 || p.Latest.Document != "doc-2" || !p.CreatedAt.Equal(t0) || !p.UpdatedAt.Equal(t0.Add(time.Hour)) || len(p.Clusters) != 0 {
			t.Fatalf("get: %+v %v", p, err)
		}
		old, err := s.GetPolicyVersion(ctx, "prod", 1)
		if err != nil || old.Document != "doc-1" || old.CreatedBy != "admin" {
			t.Fatalf("version 1: %+v %v", old, err)
		}
		vs, err := s.ListPolicyVersions(ctx, "prod")
		if err != nil || len(vs) != 2 || vs[0].Version != 2 || vs[1].Version != 1 || vs[0].Document != "" {
			t.Fatalf("versions: %+v %v", vs, err)
		}
		for _, err := range []error{
			func() error { _, err := s.GetPolicy(ctx, "none"); return err }(),
			func() error { _, err := s.GetPolicyVersion(ctx, "prod", 3); return err }(),
			func() error { _, err := s.ListPolicyVersions(ctx, "none"); return err }(),
			func() error { _, err := s.ClusterPolicy(ctx, "c1"); return err }(),
			s.DeletePolicy(ctx, "none"),
		} {
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("want ErrNotFound, got %v", err)
			}
		}
		// Assignment to clusters.
		c1, err := s.CreateCluster(ctx, "c1", t0)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := s.CreateCluster(ctx, "c2", t0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetClusterPolicy(ctx, c1.ID, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown policy: %v", err)
		}
		if _, err := s.SetClusterPolicy(ctx, 999999, "prod"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown cluster: %v", err)
		}
		for _, c := range []Cluster{c1, c2} {
			got, err := s.SetClusterPolicy(ctx, c.ID, "prod")
			if err != nil || got.Policy != "prod" {
				t.Fatalf("assign: %+v %v", got, err)
			}
		}
		cp, err := s.ClusterPolicy(ctx, "c2")
		if err != nil || cp.Policy != "prod" || cp.Version != 2 || cp.Document != "doc-2" {
			t.Fatalf("cluster policy: %+v %v", cp, err)
		}
		ps, err := s.ListPolicies(ctx)
		if err != nil || len(ps) != 2 || ps[0].Name != "dev" || ps[1].Name != "prod" || !slices.Equal(ps[1].Clusters, []string{"c1", "c2"}) || len(ps[0].Clusters) != 0 {
			t.Fatalf("list: %+v %v", ps, err)
		}
		if c, err := s.GetCluster(ctx, c1.ID); err != nil || c.Policy != "prod" {
			t.Fatalf("cluster: %+v %v", c, err)
		}
		// A policy in use cannot be deleted.
		if err := s.DeletePolicy(ctx, "prod"); !errors.Is(err, ErrConflict) {
			t.Fatalf("delete in use: %v", err)
		}
		for _, c := range []Cluster{c1, c2} {
			if got, err := s.SetClusterPolicy(ctx, c.ID, ""); err != nil || got.Policy != "" {
				t.Fatalf("unassign: %+v %v", got, err)
			}
		}
		if err := s.DeletePolicy(ctx, "prod"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetPolicyVersion(ctx, "prod", 1); !errors.Is(err, ErrNotFound) {
			t.Errorf("versions outlived their policy: %v", err)
		}
		// A re-created policy starts again at version 1.
		if v, _, err := s.PutPolicy(ctx, put("prod", "doc-9", t0)); err != nil || v.Version != 1 {
			t.Fatalf("re-create: %+v %v", v, err)
		}
	})
}

func TestPoliciesInvalidAndConcurrent(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		for _, p := range []PolicyPut{{Name: "", Document: "d", Digest: "x"}, {Name: "a", Document: "", Digest: "x"},
			{Name: "a", Document: "d\x00", Digest: "x"}, {Name: "a", Document: "d", Digest: ""}} {
			if _, _, err := s.PutPolicy(ctx, p); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: %v", p, err)
			}
		}
		// Concurrent applies of different documents: every one that succeeds
		// gets its own version, none is lost silently.
		if _, _, err := s.PutPolicy(ctx, put("race", "d0", t0)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, changed, err := s.PutPolicy(ctx, put("race", string(rune('a'+i)), t0))
				if err != nil && !errors.Is(err, ErrConflict) {
					t.Errorf("concurrent put: %v", err)
				}
				if err == nil && changed {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		vs, err := s.ListPolicyVersions(ctx, "race")
		if err != nil || len(vs) != ok+1 || vs[0].Version != ok+1 {
			t.Fatalf("%d applies succeeded, versions %+v %v", ok, vs, err)
		}
	})
}
