package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"mamori/internal/auth"
	"mamori/internal/compliance"
)

// TestComplianceReportAPI: the report of what the server holds, on both
// engines — image controls assessed from the ingested scan (a fixable High
// vulnerability and a secret fail 4.1.1 and 4.1.4; no malware scan fails
// 4.1.3), the others not assessed with the missing component named.
func TestComplianceReportAPI(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		op, _ := e.token(auth.RoleOperator)
		viewer, _ := e.token(auth.RoleViewer)
		if _, err := upload(context.Background(), e.ts.URL, op, testResult("s1", digestN(1), time.Now().Add(-time.Hour))); err != nil {
			t.Fatal(err)
		}
		code, body := e.do("GET", "/api/v1/compliance/report", viewer, nil)
		if code != http.StatusOK {
			t.Fatalf("%d %s", code, body)
		}
		var r compliance.Report
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"4.1.1": "fail", "4.1.3": "fail", "4.1.4": "fail",
			"4.3.1": "not assessed: cluster component not deployed", "4.5.4": "not assessed: agent not deployed",
			"4.2.1": "not assessed: no registry configured", "4.1.5": "not assessed: policy not deployed"}
		for _, c := range r.Controls {
			w, ok := want[c.ID]
			if !ok {
				continue
			}
			if w == "fail" && (c.Status != compliance.StatusFail || c.Evidence[0].Link == "") {
				t.Errorf("%s: %s %q %+v", c.ID, c.Status, c.Reason, c.Evidence)
			}
			if w != "fail" && (c.Status != compliance.StatusNotAssessed || !strings.HasPrefix(c.Reason, w)) {
				t.Errorf("%s: %s %q, want %q", c.ID, c.Status, c.Reason, w)
			}
		}
		for format, prefix := range map[string]string{"pdf": "%PDF-", "html": "<!doctype html>"} {
			resp := e.request("GET", "/api/v1/compliance/report?format="+format, viewer, nil, nil)
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(string(b), prefix) || resp.Header.Get("Content-Type") != compliance.ContentType(format) {
				t.Errorf("%s: %d %q %s %v", format, resp.StatusCode, b[:min(len(b), 40)], resp.Header.Get("Content-Type"), err)
			}
		}
		for _, q := range []string{"?format=docx", "?standard=pci", "?standard=" + strings.Repeat("x", 5000)} {
			if code, body := e.do("GET", "/api/v1/compliance/report"+q, viewer, nil); code != http.StatusBadRequest {
				t.Errorf("%s: %d %s", q[:min(len(q), 20)], code, body)
			}
		}
	})
}
