package fanotify

import (
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzNextEvent: any bytes decode into events or ErrProtocol, never a
// panic or a loop that does not shrink the buffer.
func FuzzNextEvent(f *testing.F) {
	v := uint8(unix.FANOTIFY_METADATA_VERSION)
	f.Add(metadata(24, v, 24, OpenPerm, 3, 1))
	f.Add(append(metadata(32, v, 24, OpenPerm, 3, 1), make([]byte, 8)...))
	f.Add(metadata(4096, v, 24, OpenPerm, 3, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		for len(b) > 0 {
			_, rest, err := nextEvent(b)
			if err != nil {
				return
			}
			if len(rest) >= len(b) {
				t.Fatalf("no progress: %d -> %d", len(b), len(rest))
			}
			b = rest
		}
	})
}
