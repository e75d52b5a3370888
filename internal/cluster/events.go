package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"mamori/internal/api"
	"mamori/internal/model"
)

// Event delivery defaults, each with its reason.
const (
	// DefaultEventQueue bounds the events waiting for the server (an
	// outage of the server at a deny storm): beyond it the oldest are
	// dropped and counted.
	DefaultEventQueue = 10000
	// eventFlush: events go out within a second, in batches.
	eventFlush = time.Second
	// eventBatch is the most events of one send.
	eventBatch = 500
)

// ingestEvents is the server call (client.IngestEvents).
type ingestEvents func(ctx context.Context, evs []model.Event) (api.EventIngestResult, error)

// eventSender delivers events in batches, retrying while the server is
// away, with a bounded queue. Each event has its ID from the start, so a
// batch sent twice is stored once.
type eventSender struct {
	send ingestEvents
	max  int
	log  *slog.Logger

	mu      sync.Mutex
	queue   []model.Event
	wake    chan struct{}
	dropped atomic.Int64
	sent    atomic.Int64
}

func newEventSender(send ingestEvents, max int, log *slog.Logger) *eventSender {
	if max <= 0 {
		max = DefaultEventQueue
	}
	return &eventSender{send: send, max: max, log: log, wake: make(chan struct{}, 1)}
}

// add queues an event (its ID is made when empty).
func (s *eventSender) add(e model.Event) {
	if e.ID == "" {
		e.ID = newID()
	}
	s.mu.Lock()
	if len(s.queue) >= s.max {
		n := len(s.queue) - s.max + 1
		s.queue = s.queue[n:]
		s.dropped.Add(int64(n))
	}
	s.queue = append(s.queue, e)
	full := len(s.queue) >= eventBatch
	s.mu.Unlock()
	if full {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// run delivers until ctx ends, then tries once more to empty the queue.
func (s *eventSender) run(ctx context.Context) {
	t := time.NewTicker(eventFlush)
	defer t.Stop()
	backoff := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			s.flush(fctx)
			cancel()
			return
		case <-t.C:
		case <-s.wake:
		}
		if backoff > 0 {
			select {
			case <-ctx.Done():
				continue
			case <-time.After(backoff):
			}
		}
		if err := s.flush(ctx); err != nil {
			backoff = min(max(2*backoff, time.Second), 30*time.Second)
			s.log.Warn("events not delivered, retrying", "queued", s.queued(), "err", err, "retryIn", backoff)
			continue
		}
		backoff = 0
	}
}

// flush sends the queue in batches; a failed batch stays queued.
func (s *eventSender) flush(ctx context.Context) error {
	for {
		s.mu.Lock()
		n := min(len(s.queue), eventBatch)
		batch := append([]model.Event(nil), s.queue[:n]...)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		res, err := s.send(ctx, batch)
		if err != nil {
			return err
		}
		for _, r := range res.Rejected {
			s.log.Warn("event rejected by the server", "id", r.ID, "err", r.Error)
		}
		s.sent.Add(int64(n - len(res.Rejected)))
		s.mu.Lock()
		// Events may have been dropped from the front meanwhile: remove
		// exactly the sent ones still there.
		sent := map[string]bool{}
		for _, e := range batch {
			sent[e.ID] = true
		}
		kept := s.queue[:0]
		for _, e := range s.queue {
			if !sent[e.ID] {
				kept = append(kept, e)
			}
		}
		s.queue = kept
		s.mu.Unlock()
	}
}

func (s *eventSender) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
