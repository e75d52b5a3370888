package cache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mamori/internal/analyzer"
)

func TestPutGet(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("ab", 32)
	if _, err := c.Get(key); err != ErrMiss {
		t.Fatalf("empty cache: %v", err)
	}
	lr := &analyzer.LayerResult{DiffID: "sha256:x", Whiteouts: []string{"a"}, Entries: 3}
	if err := c.Put(key, lr); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	if got.DiffID != "sha256:x" || got.Entries != 3 || got.Whiteouts[0] != "a" {
		t.Errorf("got %+v", got)
	}
}

func TestCorruptEntryIsAMiss(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("cd", 32)
	if err := c.Put(key, &analyzer.LayerResult{}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "layers", key[:2], key+".json.gz")
	if err := os.WriteFile(p, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(key); err != ErrMiss {
		t.Fatalf("corrupt entry: %v", err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Error("corrupt entry not removed")
	}
}

func TestBadKey(t *testing.T) {
	c, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"../../etc/passwd", "", "zz"} {
		if _, err := c.Get(k); err == nil || err == ErrMiss {
			t.Errorf("Get(%q) = %v", k, err)
		}
		if err := c.Put(k, &analyzer.LayerResult{}); err == nil {
			t.Errorf("Put(%q) accepted", k)
		}
	}
}

func TestNilCache(t *testing.T) {
	var c *Cache
	if _, err := c.Get(strings.Repeat("0", 64)); err != ErrMiss {
		t.Error(err)
	}
	if err := c.Put(strings.Repeat("0", 64), &analyzer.LayerResult{}); err != nil {
		t.Error(err)
	}
}
