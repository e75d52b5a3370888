package sensor

import (
	"errors"
	"testing"

	"mamori/internal/runtime/event"
)

// FuzzDecodeRecord: a hostile or corrupt ring-buffer record never panics;
// it decodes or fails with ErrMalformed, and a decoded event renders
// safely.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(rec{kind: code(event.KindOpen), sysid: uint32(sysOpen), sects: []sect{{sPath, []byte("/etc/passwd")}}}.bytes())
	f.Add(rec{kind: code(event.KindExec), sects: []sect{{sArgs, []byte("a\x00b\x00")}, {sCwd, []byte("/\xff")}}}.bytes())
	f.Add(rec{kind: code(event.KindConnect), sysid: uint32(sysConnect), sects: []sect{{sSockaddr, []byte{10, 0, 1, 2}}, {sSockinfo, make([]byte, 44)}}}.bytes())
	f.Add(rec{kind: code(event.KindBind), sysid: uint32(sysBind), sects: []sect{{sSockaddr, []byte{1, 0, 0}}}}.bytes())
	f.Add(rec{kind: code(event.KindSetns), sysid: uint32(sysSetns), sects: []sect{{sPath, []byte("/m")}}}.bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var e event.Event
		_, err := decodeRecord(raw, boot, &e)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error not ErrMalformed: %v", err)
			}
			return
		}
		if len(e.Process.Args) > event.MaxArgs {
			t.Fatalf("%d args", len(e.Process.Args))
		}
		_ = e.String()
	})
}
