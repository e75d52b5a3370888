package container

import (
	"strings"
	"testing"
)

func FuzzParseCgroupPath(f *testing.F) {
	for _, s := range []string{"/default/c1", "/docker/" + hexA, "/kubepods/burstable/pod" + uid + "/" + hexA,
		"/kubepods.slice/kubepods-pod1.slice/cri-containerd-" + hexA + ".scope", "/../x", "", "/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		ref := ParseCgroupPath(p)
		if ref.IsContainer() && ref.ID == "" {
			t.Fatalf("%q: container without an id", p)
		}
		if ref.ID != "" && !strings.Contains(p, ref.ID) {
			t.Fatalf("%q: id %q not in the path", p, ref.ID)
		}
		_ = cgroupfsPath(p)
	})
}

func FuzzParseProc(f *testing.F) {
	f.Add([]byte("0::/t1/c1\n4:memory:/docker/" + hexA + "\n"))
	f.Add([]byte("1 (a) b) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 55 0\n"))
	f.Add([]byte("75 51 0:40 / / rw - overlay overlay rw,upperdir=/a\\040b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if pc, err := ParseProcCgroup(b); err == nil {
			pc.ContainerRef()
		}
		_, _ = ParseStatStart(b)
		for _, m := range ParseMountinfo(b) {
			if m.Major >= 1<<12 || m.Minor >= 1<<20 {
				t.Fatalf("device %d:%d out of range", m.Major, m.Minor)
			}
		}
		_ = FindCgroup2(b)
		_ = Unescape(string(b))
	})
}
