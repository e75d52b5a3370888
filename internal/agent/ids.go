package agent

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// Event IDs: 128 bits, hex. The first 64 are random per agent process,
// the last 64 count: unique without a random read per event, and stable
// once made (the spool keeps the event with its ID, so a resend is
// de-duplicated by the server).
var (
	idPrefix  = newIDPrefix()
	idCounter atomic.Uint64
)

func newIDPrefix() string {
	var b [8]byte
	// Since Go 1.24 crypto/rand.Read never returns an error (it crashes
	// the program instead), so there is nothing to check.
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newEventID returns a fresh event ID (32 hex digits).
func newEventID() string {
	n := idCounter.Add(1)
	var buf [32]byte
	copy(buf[:16], idPrefix)
	s := strconv.FormatUint(n, 16)
	for i := 16; i < 32-len(s); i++ {
		buf[i] = '0'
	}
	copy(buf[32-len(s):], s)
	return string(buf[:])
}
