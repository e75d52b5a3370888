package hostfs

import (
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkCacheGetHit is the verdict cache's hot path: every open of a
// file already decided.
func BenchmarkCacheGetHit(b *testing.B) {
	c := NewCache[int](0)
	sts := make([]unix.Stat_t, 1024)
	for i := range sts {
		sts[i] = unix.Stat_t{Dev: 1, Ino: uint64(i), Size: 4096}
		c.Put(&sts[i], i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := c.Get(&sts[i&1023]); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkCachePutEvict: inserts into a full cache (each evicts).
func BenchmarkCachePutEvict(b *testing.B) {
	c := NewCache[int](1024)
	st := unix.Stat_t{Dev: 1, Size: 1}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		st.Ino = uint64(i)
		c.Put(&st, i)
	}
}
