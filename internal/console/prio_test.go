package console

import (
	"context"
	"html"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/priority"
)

// TestPrioritisedVulnerabilities (issue 15): the vulnerability list is in
// priority order by default, shows known exploitation and EPSS, filters on
// them by the API's names, and the detail and image pages show where a
// severity came from, the priority and its reason.
func TestPrioritisedVulnerabilities(t *testing.T) {
	e := newEnv(t)
	res := debianResult("registry.local/prio/app:1", "sha256:4444444444444444444444444444444444444444444444444444444444444444",
		"scan-prio", time.Now().UTC())
	for i := range res.Vulnerabilities {
		v := &res.Vulnerabilities[i]
		switch v.ID {
		case "DEBIAN-CVE-2023-4911": // real KEV entry and EPSS score
			v.KEV = &model.KEV{CVE: "CVE-2023-4911", DateAdded: "2023-11-21", DueDate: "2023-12-12"}
			v.EPSS = &model.EPSS{CVE: "CVE-2023-4911", Score: 0.69791, Percentile: 0.98614, Date: "2026-01-02"}
		case "DEBIAN-CVE-2024-2961":
			v.EPSS = &model.EPSS{CVE: "CVE-2024-2961", Score: 0.92739, Percentile: 0.99748, Date: "2026-01-02"}
		case "DEBIAN-CVE-2011-3374":
			v.SeveritySource = "DEBIAN-CVE-2011-3374-OTHER"
		}
	}
	priority.Apply(res.Vulnerabilities)
	out, err := e.st.IngestScan(context.Background(), res)
	if err != nil {
		t.Fatal(err)
	}
	c := e.login(auth.RoleViewer)

	code, body, _ := c.get("/vulnerabilities")
	if code != http.StatusOK {
		t.Fatalf("list: %d", code)
	}
	ids := regexp.MustCompile(`<a class="primary" href="/vulnerabilities/([^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(ids) < 3 || ids[0][1] != "DEBIAN-CVE-2023-4911" || ids[1][1] != "DEBIAN-CVE-2024-2961" {
		t.Errorf("default order: %v", ids)
	}
	for _, want := range []string{"Known exploited", "EPSS 0.70", "EPSS 0.93", `aria-sort="descending">Priority ↓`} {
		if !strings.Contains(body, want) {
			t.Errorf("list lacks %q", want)
		}
	}
	code, body, _ = c.get("/vulnerabilities?kev=true")
	if code != http.StatusOK || !strings.Contains(body, "DEBIAN-CVE-2023-4911") || strings.Contains(body, "DEBIAN-CVE-2024-2961") {
		t.Errorf("kev=true: %d", code)
	}
	if !strings.Contains(body, `name="kev" value="true" checked`) {
		t.Error("the form does not keep kev")
	}
	code, body, _ = c.get("/vulnerabilities?epssMin=0.9")
	if code != http.StatusOK || !strings.Contains(body, "DEBIAN-CVE-2024-2961") || strings.Contains(body, "/vulnerabilities/DEBIAN-CVE-2023-4911") {
		t.Errorf("epssMin=0.9: %d", code)
	}
	for q, want := range map[string]string{"epssMin=2": "Invalid epssMin", "epssMin=x": "Invalid epssMin", "kev=maybe": "Invalid kev"} {
		code, body, _ := c.get("/vulnerabilities?" + q)
		if code != http.StatusBadRequest || !strings.Contains(html.UnescapeString(body), want) {
			t.Errorf("%s: %d, want 400 with %q", q, code, want)
		}
	}

	code, body, _ = c.get("/vulnerabilities/DEBIAN-CVE-2023-4911")
	body = html.UnescapeString(body)
	if code != http.StatusOK || !strings.Contains(body, "Since 2023-11-21") || !strings.Contains(body, "known exploited since 2023-11-21, EPSS 0.70") {
		t.Errorf("detail: %d", code)
	}
	code, body, _ = c.get("/images/" + strconv.FormatInt(out.ImageID, 10) + "?tab=vulns")
	body = html.UnescapeString(body)
	if code != http.StatusOK || !strings.Contains(body, "from DEBIAN-CVE-2011-3374-OTHER") || !strings.Contains(body, "Known exploited") {
		t.Errorf("image page: %d", code)
	}
}
