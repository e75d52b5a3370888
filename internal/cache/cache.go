// Package cache keeps per-layer analysis results on disk, keyed by a
// content address (the layer's diff ID hashed with the analyzers' versions),
// so a rescan of an image that shares layers reads only its new layers.
package cache

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"mamori/internal/analyzer"
)

// ErrMiss is returned by Get when no usable entry exists.
var ErrMiss = errors.New("cache: miss")

// maxEntrySize caps what Get decodes: a cache entry is written by us, but
// the cache dir may be shared or tampered with.
const maxEntrySize = 256 << 20

var keyRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Cache is a directory of layer results. The zero value is not usable; a
// nil *Cache is a cache that never hits and never stores.
type Cache struct {
	dir string
}

// DefaultDir is the per-user cache dir: $XDG_CACHE_HOME/mamori or ~/.cache/mamori.
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache: user cache dir: %w", err)
	}
	return filepath.Join(d, "mamori"), nil
}

// Open returns the cache in dir, creating it (mode 0700: results name the
// files of private images).
func Open(dir string) (*Cache, error) {
	ld := filepath.Join(dir, "layers")
	if err := os.MkdirAll(ld, 0o700); err != nil {
		return nil, fmt.Errorf("cache: create %s: %w", ld, err)
	}
	return &Cache{dir: dir}, nil
}

// Dir is the cache's root directory.
func (c *Cache) Dir() string {
	if c == nil {
		return ""
	}
	return c.dir
}

func (c *Cache) path(key string) string {
	return filepath.Join(c.dir, "layers", key[:2], key+".json.gz")
}

// Get returns the stored layer result for key, or ErrMiss. A corrupt entry
// is removed and reported as a miss.
func (c *Cache) Get(key string) (*analyzer.LayerResult, error) {
	if c == nil {
		return nil, ErrMiss
	}
	if !keyRE.MatchString(key) {
		return nil, fmt.Errorf("cache: bad key %q", key)
	}
	f, err := os.Open(c.path(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrMiss
	}
	if err != nil {
		return nil, fmt.Errorf("cache: open %s: %w", key, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		c.drop(key)
		return nil, ErrMiss
	}
	var lr analyzer.LayerResult
	dec := json.NewDecoder(io.LimitReader(zr, maxEntrySize))
	if err := dec.Decode(&lr); err != nil {
		c.drop(key)
		return nil, ErrMiss
	}
	return &lr, nil
}

func (c *Cache) drop(key string) { _ = os.Remove(c.path(key)) }

// Put stores lr under key atomically (write aside, rename), so a reader
// never sees half an entry.
func (c *Cache) Put(key string, lr *analyzer.LayerResult) error {
	if c == nil {
		return nil
	}
	if !keyRE.MatchString(key) {
		return fmt.Errorf("cache: bad key %q", key)
	}
	dst := c.path(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-*")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	zw := gzip.NewWriter(tmp)
	err = json.NewEncoder(zw).Encode(lr)
	if cerr := zw.Close(); err == nil {
		err = cerr
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("cache: put %s: %w", key, err)
	}
	return nil
}
