package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/store"
)

func TestRegistryAPIValidationAndSecrets(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		e := newEnv(t, dsn)
		ok := map[string]any{"name": "r", "url": "https://registry.example.com", "password": "s3cret-value"}
		for _, tc := range []struct {
			name string
			mod  map[string]any
		}{
			{"no name", map[string]any{"name": ""}},
			{"no url", map[string]any{"url": ""}},
			{"path in url", map[string]any{"url": "https://r.example.com/v2/x"}},
			{"credentials in url", map[string]any{"url": "https://u:p@r.example.com"}},
			{"ftp", map[string]any{"url": "ftp://r.example.com"}},
			{"plain http without insecure", map[string]any{"url": "http://r.example.com"}},
			{"bad glob", map[string]any{"repositories": []string{"["}}},
			{"bad regex", map[string]any{"tags": map[string]any{"regex": "("}}},
			{"latest too big", map[string]any{"tags": map[string]any{"latest": 5000}}},
			{"schedule too short", map[string]any{"schedule": "1m"}},
			{"schedule garbage", map[string]any{"schedule": "often"}},
			{"unknown field", map[string]any{"color": "red"}},
		} {
			body := map[string]any{}
			for k, v := range ok {
				body[k] = v
			}
			for k, v := range tc.mod {
				body[k] = v
			}
			if code, b := e.do("POST", "/api/v1/registries", e.admin, body); code != 400 || !strings.Contains(string(b), `"error"`) {
				t.Errorf("%s: %d %s, want 400", tc.name, code, b)
			}
		}
		regs, err := e.srv.Store().ListRegistries(context.Background())
		if err != nil || len(regs) != 0 {
			t.Fatalf("registries stored after invalid requests: %d %v", len(regs), err)
		}
		code, b := e.do("POST", "/api/v1/registries", e.admin, ok)
		if code != 201 {
			t.Fatalf("create: %d %s", code, b)
		}
		var rv api.Registry
		_ = json.Unmarshal(b, &rv)
		if code, _ := e.do("POST", "/api/v1/registries", e.admin, ok); code != 409 {
			t.Errorf("same name again: %d, want 409", code)
		}
		path := fmt.Sprintf("/api/v1/registries/%d", rv.ID)
		secretOf := func() []byte {
			r, err := e.srv.Store().GetRegistry(context.Background(), rv.ID)
			if err != nil {
				t.Fatal(err)
			}
			return r.Secret
		}
		before := secretOf()
		// Update without a password keeps it; the stored secret decrypts to it.
		code, b = e.do("PUT", path, e.admin, map[string]any{"name": "r", "url": "registry.example.com:5000", "tags": map[string]any{"include": []string{"v*"}, "latest": 3}})
		if code != 200 || !strings.Contains(string(b), `"passwordSet":true`) || !strings.Contains(string(b), `"tagFilter":"v*, latest:3"`) {
			t.Fatalf("update keeping the password: %d %s", code, b)
		}
		if string(secretOf()) != string(before) {
			t.Error("the secret changed on an update without password")
		}
		r, _ := e.srv.Store().GetRegistry(context.Background(), rv.ID)
		if pw, err := e.srv.box.open(r.Secret); err != nil || string(pw) != "s3cret-value" {
			t.Errorf("decrypted %q %v", pw, err)
		}
		// "" clears it.
		code, b = e.do("PUT", path, e.admin, map[string]any{"name": "r", "url": "registry.example.com", "password": ""})
		if code != 200 || !strings.Contains(string(b), `"passwordSet":false`) {
			t.Fatalf("clear the password: %d %s", code, b)
		}
		if code, _ := e.do("PUT", "/api/v1/registries/999999", e.admin, ok); code != 404 {
			t.Errorf("update missing: %d", code)
		}
		if code, _ := e.do("DELETE", path, e.admin, nil); code != 204 {
			t.Errorf("delete: %d", code)
		}
		if code, _ := e.do("GET", path, e.admin, nil); code != 404 {
			t.Errorf("get deleted: %d", code)
		}
	})
}

// TestSchedulerRunsDueSyncs: a registry whose schedule is due is synced by
// the background loop (here it fails: nothing listens), one that is not
// scheduled is left alone.
func TestSchedulerRunsDueSyncs(t *testing.T) {
	e := newEnv(t, "", func(c *Config) { c.SchedulerTick = 50 * time.Millisecond })
	ctx := context.Background()
	due, err := e.srv.Store().CreateRegistry(ctx, store.Registry{Name: "due", URL: "127.0.0.1:1", Schedule: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	manual, err := e.srv.Store().CreateRegistry(ctx, store.Registry{Name: "manual", URL: "127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Start()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := e.srv.Store().GetRegistry(ctx, due.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.LastSync.Status == store.SyncFailed {
			if !strings.Contains(r.LastSync.Error, "list repositories") {
				t.Errorf("sync error %q", r.LastSync.Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the due registry was not synced: %+v", r.LastSync)
		}
		time.Sleep(20 * time.Millisecond)
	}
	m, _ := e.srv.Store().GetRegistry(ctx, manual.ID)
	if !m.LastSync.At.IsZero() {
		t.Errorf("the manual registry was synced: %+v", m.LastSync)
	}
}

// TestRegistryRulesAPI: the registry rules of the registry service through
// the API; TestRegistryRulesConsole in internal/console sends the same
// registries through the console's form and gets the same refusals.
func TestRegistryRulesAPI(t *testing.T) {
	e := newEnv(t, "")
	for _, tc := range []struct {
		name string
		req  func(*api.RegistryRequest)
		want string
	}{
		{"plain HTTP without insecure", func(r *api.RegistryRequest) { r.URL = "http://registry.example.com" }, "is plain HTTP: set insecure"},
		{"schedule under the minimum", func(r *api.RegistryRequest) { r.Schedule = "3m" }, "at least 5m0s"},
		{"not a registry address", func(r *api.RegistryRequest) { r.URL = "registry.example.com/team" }, "valid RFC 3986 URI authorities"},
		{"bad repository glob", func(r *api.RegistryRequest) { r.Repositories = []string{"team/["} }, "team/["},
		{"URL with credentials", func(r *api.RegistryRequest) { r.URL = "https://user:pw@registry.example.com" }, "must not carry credentials"},
	} {
		req := api.RegistryRequest{Name: "reg-" + strings.ReplaceAll(tc.name, " ", "-"), URL: "https://registry.example.com"}
		tc.req(&req)
		code, body := e.do("POST", "/api/v1/registries", e.admin, req)
		if code != http.StatusBadRequest || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %d %s, want 400 with %q", tc.name, code, body, tc.want)
		}
	}
	if regs, _ := e.srv.Store().ListRegistries(context.Background()); len(regs) != 0 {
		t.Fatalf("%d registries stored from refused requests", len(regs))
	}
	if code, body := e.do("POST", "/api/v1/registries", e.admin, api.RegistryRequest{Name: "local", URL: "http://127.0.0.1:5000", Insecure: true}); code != http.StatusCreated {
		t.Fatalf("insecure registry: %d %s", code, body)
	}
	if !strings.Contains(e.logs.String(), "registry created") {
		t.Error("no audit line for the API's registry")
	}
}
