package fanotify

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func metadata(evLen uint32, vers uint8, metaLen uint16, mask uint64, fd, pid int32) []byte {
	b := make([]byte, metadataBytes)
	binary.NativeEndian.PutUint32(b[0:], evLen)
	b[4] = vers
	binary.NativeEndian.PutUint16(b[6:], metaLen)
	binary.NativeEndian.PutUint64(b[8:], mask)
	binary.NativeEndian.PutUint32(b[16:], uint32(fd))
	binary.NativeEndian.PutUint32(b[20:], uint32(pid))
	return b
}

func TestNextEvent(t *testing.T) {
	v := uint8(unix.FANOTIFY_METADATA_VERSION)
	two := append(metadata(24, v, 24, OpenPerm, 7, 42), metadata(24, v, 24, CloseWrite, 8, 43)...)
	m, rest, err := nextEvent(two)
	if err != nil || m.mask != OpenPerm || m.fd != 7 || m.pid != 42 || len(rest) != 24 {
		t.Fatalf("first: %+v %d %v", m, len(rest), err)
	}
	m, rest, err = nextEvent(rest)
	if err != nil || m.mask != CloseWrite || m.fd != 8 || len(rest) != 0 {
		t.Fatalf("second: %+v %d %v", m, len(rest), err)
	}
	// An event with an info record after the metadata is skipped whole.
	withInfo := append(metadata(32, v, 24, OpenPerm, 9, 1), make([]byte, 8)...)
	if _, rest, err := nextEvent(withInfo); err != nil || len(rest) != 0 {
		t.Errorf("event with info record: %d %v", len(rest), err)
	}
	for name, b := range map[string][]byte{
		"short":         make([]byte, 10),
		"old version":   metadata(24, 2, 24, OpenPerm, 1, 1),
		"length past":   metadata(48, v, 24, OpenPerm, 1, 1),
		"length short":  metadata(8, v, 24, OpenPerm, 1, 1),
		"zero length":   metadata(0, v, 24, OpenPerm, 1, 1),
		"metadata long": metadata(24, v, 40, OpenPerm, 1, 1),
	} {
		if _, _, err := nextEvent(b); !errors.Is(err, ErrProtocol) {
			t.Errorf("%s: want ErrProtocol, got %v", name, err)
		}
	}
}

func TestOptionsValidated(t *testing.T) {
	bad := []Option{
		WithClass(Class(99)), WithWorkers(0), WithWorkers(1000), WithQueue(0), WithQueue(1 << 20),
		WithBudget(0), WithBudget(time.Hour), WithTimeoutVerdict(0), WithOverflowVerdict(9),
		WithExcludeExe("relative/cat"), WithLogger(nil),
	}
	for i, o := range bad {
		if _, err := makeOptions([]Option{o}); err == nil {
			t.Errorf("bad option %d accepted", i)
		}
	}
	o, err := makeOptions([]Option{WithExcludeExe("/usr/bin/../bin/cat")})
	if err != nil || !o.excludeExe["/usr/bin/cat"] {
		t.Errorf("exclude path not cleaned: %v %v", o.excludeExe, err)
	}
	if Allow.String() != "allow" || Deny.String() != "deny" || Verdict(7).String() != "verdict(7)" {
		t.Error("verdict names")
	}
}
