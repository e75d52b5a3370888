package appcontrol

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"mamori/internal/host/fanotify/fanotifytest"
)

// BenchmarkDecision is the in-process cost of one exec decision for
// /bin/true: cold (classify, hash, look up) and warm (digest cache hit,
// look up), without the fanotify round trip.
func BenchmarkDecision(b *testing.B) {
	f, err := os.Open("/bin/true")
	if err != nil {
		b.Skip(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		b.Fatal(err)
	}
	list := NewList()
	e, err := NewEnforcer(list, ModeBlock)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	cold := func() fileInfo {
		var info fileInfo
		info.kind, info.content = Classify(f, st.Size, "/bin/true", st.Mode)
		sum, _, err := digests(ctx, f, st.Size, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		info.sum, info.hashed = sum, true
		return info
	}
	info := cold()
	if err := list.Add(Entry{SHA256: fmt.Sprintf("%x", info.sum), Source: SourceManual}); err != nil {
		b.Fatal(err)
	}
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if i := cold(); !list.Allowed(i.sum) {
				b.Fatal("not allowed")
			}
		}
	})
	e.cache.Put(&st, info)
	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			i, ok := e.cache.Get(&st)
			if !ok || !e.list.Load().Allowed(i.sum) {
				b.Fatal("miss")
			}
		}
	})
}

// BenchmarkExec is one exec of a listed binary on a tmpfs seen by the
// process that runs it (a dash loop), with no enforcer and with the
// enforcer's digest cache warm. ns/exec includes fork and exec; the
// difference is the decision. Privileged (MAMORI_TEST_HOST=1).
func BenchmarkExec(b *testing.B) {
	fanotifytest.Privileged(b)
	for _, variant := range []string{"none", "warm"} {
		b.Run(variant, func(b *testing.B) {
			dir := fanotifytest.Tmpfs(b, 32)
			bin := filepath.Join(dir, "true")
			body, err := os.ReadFile("/bin/true")
			if err != nil {
				b.Skip(err)
			}
			if err := os.WriteFile(bin, body, 0o755); err != nil {
				b.Fatal(err)
			}
			if variant == "warm" {
				list := NewList()
				if err := list.Add(Entry{SHA256: sha(body), Source: SourceManual}); err != nil {
					b.Fatal(err)
				}
				e, err := NewEnforcer(list, ModeBlock)
				if err != nil {
					b.Fatal(err)
				}
				l, err := e.Listen([]Mark{{Path: dir}})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- l.Run(ctx, e) }()
				defer func() { cancel(); <-done }()
				if r := fanotifytest.Run(10*time.Second, bin); r.Err != nil { // warm the cache
					b.Fatal(r.Err)
				}
			}
			b.ResetTimer()
			r := fanotifytest.Run(30*time.Minute, "sh", "-c", fmt.Sprintf(`i=0; while [ $i -lt %d ]; do %s; i=$((i+1)); done`, b.N, bin))
			b.StopTimer()
			if r.Err != nil {
				b.Fatalf("%v %q", r.Err, r.Output)
			}
			b.ReportMetric(float64(r.Duration.Nanoseconds())/float64(b.N), "ns/exec")
		})
	}
}
