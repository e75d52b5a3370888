package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"mamori/internal/api/client"
	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/store"
)

func countScans(t *testing.T, e *testEnv) int {
	t.Helper()
	p, err := e.srv.Store().ListScans(context.Background(), store.ScanFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Total
}

func TestIngestAndViews(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		op, _ := e.token(auth.RoleOperator)
		res := testResult("scan-1", digestN(1), time.Now().Add(-time.Minute))

		code, body := e.do("POST", "/api/v1/scans", op, res)
		if code != http.StatusCreated {
			t.Fatalf("ingest: %d %s", code, body)
		}
		var out struct {
			Status    string `json:"status"`
			Duplicate bool   `json:"duplicate"`
			ImageID   int64  `json:"imageID"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatal(err)
		}
		if out.Status != "created" || out.Duplicate || out.ImageID == 0 {
			t.Fatalf("ingest answer %+v", out)
		}
		// The same scan again: 200, duplicate, nothing new.
		code, body = e.do("POST", "/api/v1/scans", op, res)
		if code != http.StatusOK || !strings.Contains(string(body), `"duplicate":true`) {
			t.Fatalf("re-ingest: %d %s", code, body)
		}
		if n := countScans(t, e); n != 1 {
			t.Fatalf("scans after duplicate = %d, want 1", n)
		}

		viewer, _ := e.token(auth.RoleViewer)
		code, body = e.do("GET", "/api/v1/images", viewer, nil)
		var imgs store.ImagePage
		if code != 200 || json.Unmarshal(body, &imgs) != nil || imgs.Total != 1 {
			t.Fatalf("images: %d %s", code, body)
		}
		if c := imgs.Images[0].Vulnerabilities; c.High != 1 || c.Medium != 1 || c.Fixable != 2 {
			t.Errorf("severity counts %+v", c)
		}
		id := imgs.Images[0].ID
		code, body = e.do("GET", "/api/v1/images/"+itoa(id), viewer, nil)
		if code != 200 || !strings.Contains(string(body), `"openssl"`) {
			t.Fatalf("image detail: %d %s", code, body)
		}
		code, body = e.do("GET", "/api/v1/images/"+itoa(id)+"/findings?kind=secret", viewer, nil)
		if code != 200 || !strings.Contains(string(body), "stripe-secret-key") || strings.Contains(string(body), "MSC-IMG-001") {
			t.Fatalf("secret findings: %d %s", code, body)
		}
		code, body = e.do("GET", "/api/v1/images/"+itoa(id)+"/findings?kind=bogus", viewer, nil)
		if code != 400 {
			t.Fatalf("bad kind: %d %s", code, body)
		}
		code, body = e.do("GET", "/api/v1/images/"+itoa(id)+"/vulnerabilities", viewer, nil)
		if code != 200 || !strings.Contains(string(body), `"total":2`) {
			t.Fatalf("image vulns: %d %s", code, body)
		}
		code, _ = e.do("GET", "/api/v1/images/999999", viewer, nil)
		if code != 404 {
			t.Fatalf("missing image: %d", code)
		}

		// Vulnerability search and filters pass through to the store.
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"", []string{"DEBIAN-CVE-2023-5678", "GHSA-29mw-wpgm-hmr9"}},
			{"?severity=high", []string{"DEBIAN-CVE-2023-5678"}},
			{"?severity=medium,low", []string{"GHSA-29mw-wpgm-hmr9"}},
			{"?cvssMin=9", []string{"DEBIAN-CVE-2023-5678"}},
			{"?cvssMax=6", []string{"GHSA-29mw-wpgm-hmr9"}},
			{"?q=lodash", []string{"GHSA-29mw-wpgm-hmr9"}},
			{"?q=CVE-2023-5678", []string{"DEBIAN-CVE-2023-5678"}},
			{"?package=openssl", []string{"DEBIAN-CVE-2023-5678"}},
			{"?fixable=true&sort=id", []string{"DEBIAN-CVE-2023-5678", "GHSA-29mw-wpgm-hmr9"}},
			{"?sort=id&reverse=true", []string{"GHSA-29mw-wpgm-hmr9", "DEBIAN-CVE-2023-5678"}},
			{"?limit=1&offset=1&sort=id", []string{"GHSA-29mw-wpgm-hmr9"}},
		} {
			code, body := e.do("GET", "/api/v1/vulnerabilities"+tc.query, viewer, nil)
			var p store.VulnerabilityPage
			if code != 200 || json.Unmarshal(body, &p) != nil {
				t.Fatalf("%s: %d %s", tc.query, code, body)
			}
			var got []string
			for _, v := range p.Vulnerabilities {
				got = append(got, v.ID)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("vulnerabilities%s = %v, want %v", tc.query, got, tc.want)
			}
		}
		for _, q := range []string{"?severity=awful", "?cvssMin=11", "?cvssMin=8&cvssMax=2", "?sort=color", "?limit=-1", "?fixable=maybe"} {
			if code, body := e.do("GET", "/api/v1/vulnerabilities"+q, viewer, nil); code != 400 || !strings.Contains(string(body), `"error"`) {
				t.Errorf("vulnerabilities%s: %d %s, want 400 JSON error", q, code, body)
			}
		}
		code, body = e.do("GET", "/api/v1/vulnerabilities/DEBIAN-CVE-2023-5678", viewer, nil)
		var d store.VulnerabilityDetail
		if code != 200 || json.Unmarshal(body, &d) != nil {
			t.Fatalf("vuln detail: %d %s", code, body)
		}
		if d.Details == "" || len(d.References) == 0 || len(d.Affected) != 1 || d.Affected[0].FixedVersion != "3.0.13-1~deb12u1" ||
			d.Affected[0].Package.Version != "3.0.11-1~deb12u1" || d.Workloads == nil || len(d.Workloads) != 0 {
			t.Errorf("vuln detail %s", body)
		}
		if !strings.Contains(string(body), `"workloads":[]`) {
			t.Errorf("workloads must be present and empty: %s", body)
		}
		code, _ = e.do("GET", "/api/v1/vulnerabilities/CVE-1999-0000", viewer, nil)
		if code != 404 {
			t.Errorf("unknown vuln: %d", code)
		}
		code, body = e.do("GET", "/api/v1/scans", viewer, nil)
		if code != 200 || !strings.Contains(string(body), `"scanID":"scan-1"`) {
			t.Errorf("scans: %d %s", code, body)
		}
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestIngestRejectsBadPayloads(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn, func(c *Config) { c.maxScanBytes = 64 << 10 })
		op, _ := e.token(auth.RoleOperator)
		good := testResult("scan-ok", digestN(7), time.Now())

		wrongSchema := *good
		wrongSchema.SchemaVersion = 99
		noID := *good
		noID.ScanID = ""
		badDigest := *good
		badDigest.Target.Digest = "sha256:nothex"
		badType := *good
		badType.Target.Type = "vm"
		future := *good
		future.CreatedAt = time.Now().Add(72 * time.Hour)
		big := *good
		big.Warnings = []string{strings.Repeat("x", 70<<10)}

		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(mustJSON(t, &big))
		zw.Close()

		for _, tc := range []struct {
			name string
			body []byte
			hdr  http.Header
			want int
		}{
			{"garbage", []byte("this is not json"), nil, 400},
			{"truncated", mustJSON(t, good)[:200], nil, 400},
			{"array", []byte("[1,2,3]"), nil, 400},
			{"trailing", append(mustJSON(t, good), []byte(` {"x":1}`)...), nil, 400},
			{"wrong schema", mustJSON(t, &wrongSchema), nil, 400},
			{"no scan id", mustJSON(t, &noID), nil, 400},
			{"bad digest", mustJSON(t, &badDigest), nil, 400},
			{"bad type", mustJSON(t, &badType), nil, 400},
			{"future", mustJSON(t, &future), nil, 400},
			{"oversized", mustJSON(t, &big), nil, 413},
			{"gzip bomb over cap", gz.Bytes(), http.Header{"Content-Encoding": {"gzip"}}, 413},
			{"bad gzip", []byte("not gzip"), http.Header{"Content-Encoding": {"gzip"}}, 400},
			{"wrong content type", mustJSON(t, good), http.Header{"Content-Type": {"text/plain"}}, 415},
		} {
			resp := e.request("POST", "/api/v1/scans", op, tc.body, tc.hdr)
			var eb struct {
				Error string `json:"error"`
			}
			err := json.NewDecoder(resp.Body).Decode(&eb)
			resp.Body.Close()
			if resp.StatusCode != tc.want || err != nil || eb.Error == "" {
				t.Errorf("%s: %d (%q, %v), want %d with a JSON error", tc.name, resp.StatusCode, eb.Error, err, tc.want)
			}
		}
		if n := countScans(t, e); n != 0 {
			t.Fatalf("%d scans stored after bad payloads, want 0", n)
		}
		if code, body := e.do("POST", "/api/v1/scans", op, good); code != 201 {
			t.Fatalf("good after bad: %d %s", code, body)
		}
	})
}

func TestClientUpload(t *testing.T) {
	e := newEnv(t, "")
	op, _ := e.token(auth.RoleOperator)
	viewer, _ := e.token(auth.RoleViewer)
	res := testResult("upload-1", digestN(3), time.Now())
	ctx := context.Background()
	rec, err := upload(ctx, e.ts.URL, op, res, client.WithRetries(2, time.Millisecond))
	if err != nil || rec.Status != "created" || rec.Attempts != 1 {
		t.Fatalf("upload: %+v %v", rec, err)
	}
	rec, err = upload(ctx, e.ts.URL, op, res)
	if err != nil || !rec.Duplicate {
		t.Fatalf("second upload: %+v %v", rec, err)
	}
	if _, err := upload(ctx, e.ts.URL, viewer, res); err == nil || !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("viewer upload: %v", err)
	}
	bad := *res
	bad.SchemaVersion = 0
	if _, err := upload(ctx, e.ts.URL, op, &bad, client.WithRetries(3, time.Millisecond)); err == nil || !strings.Contains(err.Error(), "schemaVersion") {
		t.Fatalf("bad upload: %v", err)
	}
	if _, err := upload(ctx, "http://192.0.2.1:8443", op, res); err == nil || !strings.Contains(err.Error(), "plain HTTP") {
		t.Fatalf("plain http to non-loopback: %v", err)
	}
	if n := countScans(t, e); n != 1 {
		t.Fatalf("scans = %d, want 1", n)
	}
	_ = model.SchemaVersion
}

func TestClientRetriesOn5xx(t *testing.T) {
	e := newEnv(t, "")
	op, _ := e.token(auth.RoleOperator)
	fails := 2
	h := e.srv.Handler()
	flaky := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fails > 0 {
			fails--
			http.Error(w, `{"error":"try later"}`, http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	})
	e.ts.Config.Handler = flaky
	rec, err := upload(context.Background(), e.ts.URL, op, testResult("retry-1", digestN(4), time.Now()), client.WithRetries(5, time.Millisecond))
	if err != nil || rec.Attempts != 3 || rec.Status != "created" {
		t.Fatalf("upload with retries: %+v %v", rec, err)
	}
}
