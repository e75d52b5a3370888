package hostfs

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Limiter bounds the bytes per second read by scans sharing it (scheduled
// scans and inventories must not starve the node's workloads of I/O). It
// is safe for concurrent use. A nil *Limiter does not limit.
type Limiter struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
}

// NewLimiter allows bytesPerSec on average with bursts of one second's
// worth. bytesPerSec <= 0 means no limit (nil).
func NewLimiter(bytesPerSec int64) *Limiter {
	if bytesPerSec <= 0 {
		return nil
	}
	r := float64(bytesPerSec)
	return &Limiter{rate: r, burst: r, tokens: r, last: time.Now()}
}

// Wait blocks until n bytes may be read or ctx ends.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	for {
		l.mu.Lock()
		now := time.Now()
		l.tokens += now.Sub(l.last).Seconds() * l.rate
		l.last = now
		if l.tokens > l.burst {
			l.tokens = l.burst
		}
		need := float64(n)
		if need > l.burst {
			need = l.burst // a read larger than the burst waits for a full bucket
		}
		if l.tokens >= need {
			l.tokens -= float64(n)
			l.mu.Unlock()
			return nil
		}
		wait := time.Duration((need - l.tokens) / l.rate * float64(time.Second))
		l.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("hostfs: rate limit wait: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// LimitReaderAt returns r whose reads wait on l (r itself when l is nil).
func LimitReaderAt(ctx context.Context, r io.ReaderAt, l *Limiter) io.ReaderAt {
	if l == nil {
		return r
	}
	return &limitedReaderAt{ctx: ctx, r: r, l: l}
}

type limitedReaderAt struct {
	ctx context.Context
	r   io.ReaderAt
	l   *Limiter
}

func (lr *limitedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if err := lr.l.Wait(lr.ctx, len(p)); err != nil {
		return 0, err
	}
	return lr.r.ReadAt(p, off)
}
