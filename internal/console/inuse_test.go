package console

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"mamori/internal/auth"
	"mamori/internal/model"
	"mamori/internal/priority"
)

// TestInUseFilter (issue 15): the vulnerability list keeps only what a
// running container loaded with "In use" (the API's inUse), the form keeps
// the choice, and the detail page names the containers.
func TestInUseFilter(t *testing.T) {
	e := newEnv(t)
	res := debianResult("registry.local/inuse/app:1", "sha256:5555555555555555555555555555555555555555555555555555555555555555",
		"scan-inuse", time.Now().UTC())
	if len(res.Vulnerabilities) < 2 {
		t.Fatal("fixture has fewer than two vulnerabilities")
	}
	seen := time.Now().UTC().Add(-time.Minute)
	used := res.Vulnerabilities[0].ID
	res.Vulnerabilities[0].InUse = &model.InUse{Loaded: true, Count: 1, LastSeen: seen,
		Containers: []model.InUseContainer{{ID: "3f1c0ffee", Name: "shop-web", Path: "usr/lib/x86_64-linux-gnu/libc.so.6", LastSeen: seen}}}
	for i := 1; i < len(res.Vulnerabilities); i++ {
		res.Vulnerabilities[i].InUse = &model.InUse{Loaded: false}
	}
	priority.Apply(res.Vulnerabilities)
	if _, err := e.st.IngestScan(context.Background(), res); err != nil {
		t.Fatal(err)
	}
	c := e.login(auth.RoleViewer)
	code, body, _ := c.get("/vulnerabilities?inUse=true")
	if code != http.StatusOK || !strings.Contains(body, "/vulnerabilities/"+used+`"`) {
		t.Fatalf("inUse=true: %d, want %s listed", code, used)
	}
	for _, v := range res.Vulnerabilities[1:] {
		if v.ID != used && strings.Contains(body, "/vulnerabilities/"+v.ID+`"`) {
			t.Errorf("inUse=true lists %s, which nothing loaded", v.ID)
		}
	}
	if !strings.Contains(body, `name="inUse" value="true" checked`) {
		t.Error("the form does not keep inUse")
	}
	// The runtime view has the same filter (nothing runs here: empty).
	code, body, _ = c.get("/runtime/vulnerabilities?inUse=true")
	if code != http.StatusOK || !strings.Contains(body, `name="inUse" value="true" checked`) || strings.Contains(body, "/vulnerabilities/"+used+`"`) {
		t.Errorf("runtime view with inUse=true: %d", code)
	}
	if code, _, _ := c.get("/vulnerabilities?inUse=perhaps"); code != http.StatusBadRequest {
		t.Errorf("inUse=perhaps: %d", code)
	}
	code, body, _ = c.get("/vulnerabilities/" + used)
	if code != http.StatusOK || !strings.Contains(body, "shop-web") {
		t.Errorf("detail: %d, want the container that loaded it named", code)
	}
}
