package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"mamori/internal/model"
)

func TestRegistries(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		r, err := s.CreateRegistry(ctx, Registry{Name: "local", URL: "127.0.0.1:5000", Username: "u", Secret: []byte{1, 2, 3},
			RepositoryFilter: "team/*", TagFilter: "v*", Schedule: 6 * time.Hour, Insecure: true})
		if err != nil || r.ID == 0 || r.CreatedAt.IsZero() {
			t.Fatalf("create = %+v, %v", r, err)
		}
		got, err := s.GetRegistry(ctx, r.ID)
		if err != nil || !reflect.DeepEqual(got, r) {
			t.Fatalf("get = %+v, %v; want %+v", got, err, r)
		}
		if _, err := s.CreateRegistry(ctx, Registry{Name: "local", URL: "x"}); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate name err = %v", err)
		}
		for _, bad := range []Registry{{URL: "x"}, {Name: "n"}, {Name: "n", URL: "x", Schedule: -1}, {Name: "n\x00", URL: "x"}} {
			if _, err := s.CreateRegistry(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: err = %v", bad, err)
			}
		}
		// Update without a secret keeps the stored one.
		r.URL, r.Secret, r.Insecure = "https://registry.example", nil, false
		up, err := s.UpdateRegistry(ctx, r)
		if err != nil || up.URL != "https://registry.example" || up.Insecure || !bytes.Equal(up.Secret, []byte{1, 2, 3}) {
			t.Fatalf("update = %+v, %v", up, err)
		}
		r.Secret = []byte("new")
		if up, err = s.UpdateRegistry(ctx, r); err != nil || string(up.Secret) != "new" {
			t.Fatalf("update secret = %+v, %v", up, err)
		}
		if _, err := s.UpdateRegistry(ctx, Registry{ID: 999, Name: "x", URL: "y"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("update missing err = %v", err)
		}
		other, _ := s.CreateRegistry(ctx, Registry{Name: "another", URL: "z"})
		other.Name = "local"
		if _, err := s.UpdateRegistry(ctx, other); !errors.Is(err, ErrConflict) {
			t.Errorf("rename onto taken name err = %v", err)
		}
		at := t0.Add(time.Minute)
		if err := s.RecordRegistrySync(ctx, r.ID, RegistrySync{At: at, Status: SyncFailed, Error: "bad \xff\x00 bytes"}); err != nil {
			t.Fatal(err)
		}
		got, _ = s.GetRegistry(ctx, r.ID)
		if !got.LastSync.At.Equal(at) || got.LastSync.Status != SyncFailed || got.LastSync.Error != "bad \uFFFD bytes" {
			t.Errorf("sync = %+v", got.LastSync)
		}
		list, err := s.ListRegistries(ctx)
		if err != nil || len(list) != 2 || list[0].Name != "another" || list[1].Name != "local" {
			t.Errorf("list = %+v, %v", list, err)
		}
		if err := s.DeleteRegistry(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteRegistry(ctx, r.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete err = %v", err)
		}
		if _, err := s.GetRegistry(ctx, r.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("get deleted err = %v", err)
		}
		if err := s.RecordRegistrySync(ctx, r.ID, RegistrySync{At: at}); !errors.Is(err, ErrNotFound) {
			t.Errorf("sync deleted err = %v", err)
		}
	})
}

func TestTokensAndSessions(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		tk, err := s.CreateToken(ctx, Token{Name: "ci", Role: "operator", Hash: []byte("h1"), Prefix: "mmr_ab", ExpiresAt: t0.Add(time.Hour)})
		if err != nil || tk.ID == 0 || tk.CreatedAt.IsZero() {
			t.Fatalf("create = %+v, %v", tk, err)
		}
		got, err := s.GetTokenByHash(ctx, []byte("h1"))
		if err != nil || !reflect.DeepEqual(got, tk) {
			t.Fatalf("by hash = %+v, %v; want %+v", got, err, tk)
		}
		if !got.Active(t0) || got.Active(t0.Add(2*time.Hour)) {
			t.Errorf("Active wrong around expiry")
		}
		if _, err := s.CreateToken(ctx, Token{Name: "dup", Role: "viewer", Hash: []byte("h1")}); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate hash err = %v", err)
		}
		for _, bad := range []Token{{Name: "x", Role: "admin"}, {Role: "admin", Hash: []byte("h")}} {
			if _, err := s.CreateToken(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: err = %v", bad, err)
			}
		}
		for _, h := range [][]byte{nil, []byte("nope")} {
			if _, err := s.GetTokenByHash(ctx, h); !errors.Is(err, ErrNotFound) {
				t.Errorf("hash %q err = %v", h, err)
			}
		}
		if err := s.TouchToken(ctx, tk.ID, t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetToken(ctx, tk.ID); !got.LastUsedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("last used = %v", got.LastUsedAt)
		}
		admin, _ := s.CreateToken(ctx, Token{Name: "admin", Role: "admin", Hash: []byte("h2")})

		// Sessions.
		se := Session{IDHash: []byte("s1"), TokenID: tk.ID, Role: "operator", CSRFSecret: []byte("csrf"), CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		if err := s.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateSession(ctx, se); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate session err = %v", err)
		}
		if err := s.CreateSession(ctx, Session{IDHash: []byte("s9"), TokenID: 999, Role: "viewer", CSRFSecret: []byte("c"), ExpiresAt: t0}); !errors.Is(err, ErrNotFound) {
			t.Errorf("session of unknown token err = %v", err)
		}
		if err := s.CreateSession(ctx, Session{IDHash: []byte("s9"), TokenID: tk.ID, Role: "viewer"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("session without secret err = %v", err)
		}
		gs, err := s.GetSession(ctx, []byte("s1"), t0.Add(time.Minute))
		if err != nil || !reflect.DeepEqual(gs, se) {
			t.Errorf("get session = %+v, %v", gs, err)
		}
		if _, err := s.GetSession(ctx, []byte("s1"), t0.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
			t.Errorf("expired session err = %v", err)
		}
		s2 := Session{IDHash: []byte("s2"), TokenID: admin.ID, Role: "admin", CSRFSecret: []byte("c"), CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
		if err := s.CreateSession(ctx, s2); err != nil {
			t.Fatal(err)
		}
		if n, err := s.DeleteExpiredSessions(ctx, t0.Add(2*time.Minute)); err != nil || n != 1 {
			t.Errorf("expire = %d, %v", n, err)
		}
		if err := s.DeleteSession(ctx, []byte("s2")); err != nil { // already gone: no error
			t.Errorf("delete gone session: %v", err)
		}
		// Revoking a token ends its sessions and hides it from lookups.
		if err := s.RevokeToken(ctx, tk.ID, t0.Add(3*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, tk.ID, t0.Add(4*time.Minute)); err != nil {
			t.Errorf("second revoke: %v", err)
		}
		if _, err := s.GetSession(ctx, []byte("s1"), t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("session of revoked token err = %v", err)
		}
		if _, err := s.GetTokenByHash(ctx, []byte("h1")); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoked token lookup err = %v", err)
		}
		if err := s.RevokeToken(ctx, 999, t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoke unknown err = %v", err)
		}
		list, err := s.ListTokens(ctx)
		if err != nil || len(list) != 2 || !list[0].RevokedAt.Equal(t0.Add(3*time.Minute)) || list[0].Active(t0) || !list[1].Active(t0) {
			t.Errorf("list = %+v, %v", list, err)
		}
	})
}

func TestMeta(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		if _, err := s.GetMeta(ctx, MetaVulnDBBuiltAt); !errors.Is(err, ErrNotFound) {
			t.Errorf("unset err = %v", err)
		}
		for _, v := range []string{"2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"} {
			if err := s.SetMeta(ctx, MetaVulnDBBuiltAt, v); err != nil {
				t.Fatal(err)
			}
			if got, err := s.GetMeta(ctx, MetaVulnDBBuiltAt); err != nil || got != v {
				t.Errorf("get = %q, %v", got, err)
			}
		}
		if err := s.SetMeta(ctx, "", "x"); !errors.Is(err, ErrInvalid) {
			t.Errorf("empty key err = %v", err)
		}
	})
}

// TestConcurrentIngest ingests images in parallel whose vulnerabilities
// overlap, with re-scans and re-matches racing, and checks every counter.
func TestConcurrentIngest(t *testing.T) {
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		const workers, perWorker = 6, 8
		var wg sync.WaitGroup
		errs := make(chan error, workers*perWorker*2)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < perWorker; i++ {
					var vs []model.Vulnerability
					for j := 0; j < 20; j++ {
						id := fmt.Sprintf("CVE-2024-%04d", (w*7+i*3+j)%40) // shared between workers
						fixed := ""
						if j%3 == 0 {
							fixed = "9"
						}
						vs = append(vs, vuln(id, fmt.Sprintf("pkg%d", j%5), model.Severity(j%6), float64(j%10), fixed))
					}
					name := fmt.Sprintf("img-%d-%d", w, i%4) // i and i+4 rescan the same image
					if _, err := s.IngestScan(ctx, result(name, "sha256:"+name, fmt.Sprintf("scan-%d", i), t0.Add(time.Duration(i)*time.Minute), vs)); err != nil {
						errs <- err
						return
					}
					if _, err := s.ListVulnerabilities(ctx, VulnerabilityFilter{Query: "pkg1", FixableOnly: true}); err != nil {
						errs <- err
						return
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		imgs, err := s.ListImages(ctx, ImageFilter{})
		if err != nil || imgs.Total != workers*4 {
			t.Fatalf("images = %d, %v", imgs.Total, err)
		}
		scans, _ := s.ListScans(ctx, ScanFilter{})
		if scans.Total != workers*perWorker {
			t.Errorf("scans = %d", scans.Total)
		}
		checkAggregates(t, s)

		// Re-match everything in parallel with new ingests.
		var refs []InventoryRef
		if err := s.ListInventories(ctx, func(ref InventoryRef, _ *model.Inventory) error { refs = append(refs, ref); return nil }); err != nil {
			t.Fatal(err)
		}
		var wg2 sync.WaitGroup
		for i, ref := range refs {
			wg2.Add(1)
			go func(i int, ref InventoryRef) {
				defer wg2.Done()
				vs := []model.Vulnerability{vuln(fmt.Sprintf("CVE-2025-%04d", i%5), "pkg0", model.SeverityHigh, 7, "")}
				if err := s.ReplaceVulnerabilities(ctx, ref, vs); err != nil {
					t.Error(err)
				}
			}(i, ref)
		}
		wg2.Wait()
		checkAggregates(t, s)
		p, _ := s.ListVulnerabilities(ctx, VulnerabilityFilter{})
		if p.Total != 5 {
			t.Errorf("after rematch: %d vulnerabilities listed", p.Total)
		}
	})
}
