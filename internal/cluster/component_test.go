package cluster

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"mamori/internal/api"
	"mamori/internal/api/client"
	"mamori/internal/model"
)

// TestEventSender: events go out in batches, stay queued while the server
// is away, and the oldest are dropped (and counted) past the bound.
func TestEventSender(t *testing.T) {
	var got []model.Event
	down := true
	s := newEventSender(func(_ context.Context, evs []model.Event) (api.EventIngestResult, error) {
		if down {
			return api.EventIngestResult{}, errors.New("connection refused")
		}
		got = append(got, evs...)
		return api.EventIngestResult{Accepted: len(evs)}, nil
	}, 3, slog.New(slog.DiscardHandler))
	for _, m := range []string{"a", "b", "c", "d"} {
		s.add(model.Event{Message: m})
	}
	if err := s.flush(context.Background()); err == nil || s.queued() != 3 || s.dropped.Load() != 1 {
		t.Fatalf("server away: %v, %d queued, %d dropped", err, s.queued(), s.dropped.Load())
	}
	down = false
	if err := s.flush(context.Background()); err != nil || s.queued() != 0 || len(got) != 3 || got[0].Message != "b" || got[0].ID == "" {
		t.Fatalf("delivered %+v, %v", got, err)
	}
}

// TestPolicyHolder: no policy known until the server answers or a saved
// one is loaded; a version the component cannot load keeps the previous
// one; the last one is saved for a restart while the server is away.
func TestPolicyHolder(t *testing.T) {
	dir := t.TempDir()
	doc := "apiVersion: mamori.dev/v1\nkind: Policy\nname: p\nadmission:\n  - {name: priv, action: block, privileged: {}}\n"
	answer := api.ComponentPolicy{Name: "p", Version: 1, Digest: "d1", Document: doc}
	var calls int
	load := func(context.Context) (api.ComponentPolicy, error) { calls++; return answer, nil }
	p := newPolicies(dir, load, slog.New(slog.DiscardHandler))
	if p.current().known {
		t.Fatal("known before anything was loaded")
	}
	ctx := context.Background()
	if err := p.refresh(ctx, "p", 1); err != nil || p.current().p == nil || p.current().p.Version != 1 {
		t.Fatalf("refresh: %v %+v", err, p.current())
	}
	if err := p.refresh(ctx, "p", 1); err != nil || calls != 1 {
		t.Fatalf("same version fetched again: %d calls", calls)
	}
	answer = api.ComponentPolicy{Name: "p", Version: 2, Document: "apiVersion: mamori.dev/v1\nkind: Policy\nname: p\nadmission: [{name: x, action: explode, privileged: {}}]\n"}
	if err := p.refresh(ctx, "p", 2); err == nil || p.current().p.Version != 1 {
		t.Fatalf("a broken version replaced the policy: %v %+v", err, p.current().p)
	}
	// A restart with the server away: the saved policy.
	q := newPolicies(dir, func(context.Context) (api.ComponentPolicy, error) { return api.ComponentPolicy{}, client.ErrNotFound }, slog.New(slog.DiscardHandler))
	if err := q.loadSaved(); err != nil || !q.current().known || q.current().p.Name != "p" {
		t.Fatalf("saved policy: %v %+v", err, q.current())
	}
	// The cluster's policy removed: nothing enforced, and saved so.
	if err := q.refresh(ctx, "", 0); err != nil || !q.current().known || q.current().p != nil {
		t.Fatalf("no policy: %v %+v", err, q.current())
	}
	r := newPolicies(dir, nil, slog.New(slog.DiscardHandler))
	if err := r.loadSaved(); err != nil || !r.current().known || r.current().p != nil {
		t.Fatalf("saved 'no policy': %v %+v", err, r.current())
	}
}
