package hostfs

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// DefaultCacheEntries bounds a verdict cache: an entry is about 100 bytes,
// so 65,536 entries are ~6 MiB, more than the distinct files a node opens
// between two signature updates in steady state.
const DefaultCacheEntries = 65536

// Cache is a bounded least-recently-used map from a file's identity to a
// value that holds while the file is unchanged: a lookup with a different
// Change misses (and drops the stale entry). It is safe for concurrent use.
type Cache[V any] struct {
	mu      sync.Mutex
	max     int
	entries map[FileID]*cacheEntry[V]
	// head is the most recently used entry, tail the least; both nil when
	// empty.
	head, tail *cacheEntry[V]

	hits, misses, stale, evictions atomic.Uint64
}

type cacheEntry[V any] struct {
	id         FileID
	change     Change
	value      V
	prev, next *cacheEntry[V]
}

// NewCache returns a cache of at most max entries (DefaultCacheEntries when
// max <= 0).
func NewCache[V any](max int) *Cache[V] {
	if max <= 0 {
		max = DefaultCacheEntries
	}
	return &Cache[V]{max: max, entries: make(map[FileID]*cacheEntry[V])}
}

// Get returns the value stored for the file of st if the file has not
// changed since.
func (c *Cache[V]) Get(st *unix.Stat_t) (V, bool) {
	id, ch := IdentityOf(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok {
		c.misses.Add(1)
		var zero V
		return zero, false
	}
	if e.change != ch {
		c.stale.Add(1)
		c.unlink(e)
		delete(c.entries, id)
		var zero V
		return zero, false
	}
	c.hits.Add(1)
	c.toFront(e)
	return e.value, true
}

// Put stores v for the file of st, evicting the least recently used entry
// when full.
func (c *Cache[V]) Put(st *unix.Stat_t, v V) {
	id, ch := IdentityOf(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		e.change, e.value = ch, v
		c.toFront(e)
		return
	}
	if len(c.entries) >= c.max && c.tail != nil {
		old := c.tail
		c.unlink(old)
		delete(c.entries, old.id)
		c.evictions.Add(1)
	}
	e := &cacheEntry[V]{id: id, change: ch, value: v}
	c.entries[id] = e
	c.pushFront(e)
}

// Forget drops the entry of the file of st.
func (c *Cache[V]) Forget(st *unix.Stat_t) {
	id, _ := IdentityOf(st)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[id]; ok {
		c.unlink(e)
		delete(c.entries, id)
	}
}

// Purge drops every entry (signatures or the allow-list changed).
func (c *Cache[V]) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries = make(map[FileID]*cacheEntry[V])
	c.head, c.tail = nil, nil
}

// Len is the number of entries.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// CacheStats counts lookups.
type CacheStats struct {
	Entries                        int
	Hits, Misses, Stale, Evictions uint64
}

// Stats returns the cache's counters.
func (c *Cache[V]) Stats() CacheStats {
	return CacheStats{Entries: c.Len(), Hits: c.hits.Load(), Misses: c.misses.Load(),
		Stale: c.stale.Load(), Evictions: c.evictions.Load()}
}

func (c *Cache[V]) pushFront(e *cacheEntry[V]) {
	e.prev, e.next = nil, c.head
	if c.head != nil {
		c.head.prev = e
	}
	c.head = e
	if c.tail == nil {
		c.tail = e
	}
}

func (c *Cache[V]) unlink(e *cacheEntry[V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (c *Cache[V]) toFront(e *cacheEntry[V]) {
	if c.head == e {
		return
	}
	c.unlink(e)
	c.pushFront(e)
}
