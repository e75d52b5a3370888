package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func TestBarDraws(t *testing.T) {
	var buf syncBuf
	b := start(&buf, "scan")
	b.SetLayers(3)
	b.LayerDone(true)
	b.Add(3 << 20)
	time.Sleep(2 * redraw)
	b.Done()
	out := buf.b.String()
	for _, want := range []string{"layers 1/3", "(1 cached)", "3.0 MB read"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
}

func TestNilBar(t *testing.T) {
	var b *Bar
	b.SetLayers(1)
	b.LayerDone(false)
	b.Add(1)
	b.Done()
	if New("x", true) != nil {
		t.Error("quiet bar is not nil")
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KB", 5 << 30: "5.0 GB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
