package server

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/match"
	"mamori/internal/model"
	"mamori/internal/service/images/vulnmatch"
	"mamori/internal/store"
	"mamori/internal/vulndb"
)

// malRecord is an OSV malicious-package record naming npm lodash 4.17.20,
// testResult's npm package; withdrawn marks it withdrawn.
func malRecord(id string, withdrawn bool) string {
	w := ""
	if withdrawn {
		w = `"withdrawn": "2099-01-02T00:00:00Z",`
	}
	return fmt.Sprintf(`{"schema_version": "1.5.0", "id": %q, "modified": "2099-01-01T00:00:00Z", %s
		"summary": "Malicious code in lodash (npm)", "details": "test record",
		"affected": [{"package": {"ecosystem": "npm", "name": "lodash", "purl": "pkg:npm/lodash"}, "versions": ["4.17.20"]}],
		"references": [{"type": "WEB", "url": "https://example.com/%s"}]}`, id, w, id)
}

// importOSV builds the vulnerability DB in dbDir from records (file name → JSON).
func importOSV(t *testing.T, dbDir string, records map[string]string) {
	t.Helper()
	src := t.TempDir()
	for name, rec := range records {
		if err := os.WriteFile(filepath.Join(src, name), []byte(rec), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := vulndb.Import(context.Background(), dbDir, src); err != nil {
		t.Fatal(err)
	}
}

// recordingStore is the store recording the MAL findings a re-match gives
// ReplaceMatches.
type recordingStore struct {
	store.Store
	mu      sync.Mutex
	malware map[int64][]model.Finding
}

func (r *recordingStore) ReplaceMatches(ctx context.Context, ref store.InventoryRef, vulns []model.Vulnerability, mal []model.Finding) error {
	if err := r.Store.ReplaceVulnerabilities(ctx, ref, vulns); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.malware[ref.ImageID] = mal
	return nil
}

func (r *recordingStore) got(id int64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, f := range r.malware[id] {
		out = append(out, f.ID+" "+f.Engine+" "+f.Evidence+" "+f.Location.Path)
	}
	return out
}

// osvMalware lists the stored OSV MAL finding IDs of image id, and whether
// the clamd finding is still there.
func osvMalware(t *testing.T, st store.Store, id int64) (ids []string, clamd bool) {
	t.Helper()
	fs, err := st.ListFindings(context.Background(), id, model.KindMalware)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		switch f.Engine {
		case match.Engine:
			ids = append(ids, f.ID)
		case "clamav":
			clamd = true
		}
	}
	slices.Sort(ids)
	return ids, clamd
}

// TestRematchMalwareFindings: a re-match computes the image's OSV
// malicious-package findings from the new DB — a MAL record that now
// matches is added, a withdrawn one dropped — and hands them to the store
// with the vulnerabilities.
func TestRematchMalwareFindings(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		dbDir := filepath.Join(t.TempDir(), "db")
		e := newEnv(t, dsn, func(c *Config) { c.VulnDBDir = dbDir })
		res := testResult("mal-1", digestN(4242), time.Now())
		res.Findings = append(res.Findings, model.Finding{Kind: model.KindMalware, ID: "Win.Test.EICAR_HDB-1",
			Title: "Malware detected by clamav", Severity: model.SeverityCritical, Engine: "clamav",
			Location: model.Location{Path: "srv/app/x.exe"}})
		out, err := e.srv.Store().IngestScan(ctx, res)
		if err != nil {
			t.Fatal(err)
		}
		id := out.ImageID
		rematch := func(records map[string]string) api.RematchStatus {
			t.Helper()
			importOSV(t, dbDir, records)
			e.srv.checkVulnDB(ctx)
			_, body := e.do("GET", "/api/v1/db", e.admin, nil)
			var info api.DBInfo
			if err := json.Unmarshal(body, &info); err != nil || info.Rematch.Error != "" || info.Rematch.Images != 1 {
				t.Fatalf("re-match: %s %v", body, err)
			}
			return info.Rematch
		}
		db1 := map[string]string{"MAL-2099-0001.json": malRecord("MAL-2099-0001", false)}
		db2 := map[string]string{"MAL-2099-0001.json": malRecord("MAL-2099-0001", true), "MAL-2099-0002.json": malRecord("MAL-2099-0002", false)}
		db3 := map[string]string{"MAL-2099-0001.json": malRecord("MAL-2099-0001", true)}

		// The store gets the findings the new DB gives: the images service
		// over a recording store.
		rec := &recordingStore{Store: e.srv.st, malware: map[int64][]model.Finding{}}
		real := e.srv.matcher
		e.srv.matcher = vulnmatch.New(rec, dbDir, e.srv.log)
		defer func() { e.srv.matcher.Close(); e.srv.matcher = real }()
		want1 := []string{"MAL-2099-0001 osv pkg:npm/lodash@4.17.20 srv/app/node_modules/lodash/package.json"}
		st := rematch(db1)
		if got := rec.got(id); !slices.Equal(got, want1) || st.Images != 1 {
			t.Errorf("DB with MAL-2099-0001: %q (images %d), want %q", got, st.Images, want1)
		}
		rematch(db2)
		if got := rec.got(id); !slices.Equal(got, []string{"MAL-2099-0002 osv pkg:npm/lodash@4.17.20 srv/app/node_modules/lodash/package.json"}) {
			t.Errorf("MAL-2099-0001 withdrawn, MAL-2099-0002 new: %q", got)
		}
		rematch(db3)
		if got := rec.got(id); len(got) != 0 {
			t.Errorf("every MAL record withdrawn: %q, want none", got)
		}
		rec.mu.Lock()
		if _, ok := rec.malware[id]; !ok {
			t.Error("ReplaceMatches not called for the image")
		}
		rec.mu.Unlock()
	})
}

// TestRematchMalwareFindingsStored is the end-to-end check of the same
// behaviour on the real store.
func TestRematchMalwareFindingsStored(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		dbDir := filepath.Join(t.TempDir(), "db")
		e := newEnv(t, dsn, func(c *Config) { c.VulnDBDir = dbDir })
		res := testResult("mal-1", digestN(4243), time.Now())
		res.Findings = append(res.Findings, model.Finding{Kind: model.KindMalware, ID: "Win.Test.EICAR_HDB-1",
			Title: "Malware detected by clamav", Severity: model.SeverityCritical, Engine: "clamav"})
		out, err := e.srv.Store().IngestScan(ctx, res)
		if err != nil {
			t.Fatal(err)
		}
		for _, step := range []struct {
			records map[string]string
			want    []string
		}{
			{map[string]string{"a.json": malRecord("MAL-2099-0001", false)}, []string{"MAL-2099-0001"}},
			{map[string]string{"a.json": malRecord("MAL-2099-0001", true), "b.json": malRecord("MAL-2099-0002", false)}, []string{"MAL-2099-0002"}},
			{map[string]string{"a.json": malRecord("MAL-2099-0001", true)}, nil},
		} {
			importOSV(t, dbDir, step.records)
			e.srv.checkVulnDB(ctx)
			ids, clamd := osvMalware(t, e.srv.Store(), out.ImageID)
			if !slices.Equal(ids, step.want) || !clamd {
				t.Errorf("stored MAL findings %v (clamd finding kept: %v), want %v", ids, clamd, step.want)
			}
			img, err := e.srv.Store().GetImage(ctx, out.ImageID)
			if err != nil || img.FindingCounts.Malware != len(step.want)+1 {
				t.Errorf("malware count %d, want %d (%v)", img.FindingCounts.Malware, len(step.want)+1, err)
			}
		}
	})
}
