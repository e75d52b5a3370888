package container

import (
	"fmt"
	"os"
	"testing"
	"time"

	"mamori/internal/runtime/event"
)

// benchResolver holds n containers (cgroup ids 1000...) and n host
// cgroups (ids 500000...), as a busy node would.
func benchResolver(b *testing.B, n int) *Resolver {
	b.Helper()
	r, err := New(WithCgroup2(""), WithProcRoot(b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i++ {
		inf := Info{RuntimeNamespace: "k8s.io", CgroupID: uint64(1000 + i), Created: time.Now()}
		inf.ID = fmt.Sprintf("%064x", i)
		inf.Runtime = RuntimeCRI
		inf.Image = "registry.example/app:1"
		inf.ImageDigest = "sha256:" + inf.ID
		inf.Pod, inf.Namespace = fmt.Sprintf("pod-%d", i), "shop"
		inf.Labels = map[string]string{"app": "web", "tier": "front"}
		r.apply(Change{Op: OpUpsert, Info: inf, At: time.Now()})
		r.addHost(uint64(500000 + i))
	}
	return r
}

// BenchmarkAttribute is the hot path: every event is attributed. "hit"
// is an event of a known container (by cgroup id), "host-cgroup" one of
// a cgroup known to be the host's, "host-root" one in the root cgroup in
// the host's mount namespace (every host process on a hybrid machine).
func BenchmarkAttribute(b *testing.B) {
	for _, n := range []int{10, 1000} {
		r := benchResolver(b, n)
		evs := make([]event.Event, 256)
		for i := range evs {
			evs[i].CgroupID = uint64(1000 + i%n)
		}
		b.Run(fmt.Sprintf("hit/%d-containers", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if r.Attribute(&evs[i%len(evs)]) == nil {
					b.Fatal("miss")
				}
			}
		})
		b.Run(fmt.Sprintf("hit-parallel/%d-containers", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				e := event.Event{}
				i := 0
				for pb.Next() {
					e.CgroupID = uint64(1000 + i%n)
					i++
					if r.Attribute(&e) == nil {
						b.Fatal("miss")
					}
				}
			})
		})
		b.Run(fmt.Sprintf("host-cgroup/%d-containers", n), func(b *testing.B) {
			b.ReportAllocs()
			e := event.Event{CgroupID: 500000}
			for i := 0; i < b.N; i++ {
				if r.Attribute(&e) != nil {
					b.Fatal("container")
				}
			}
		})
		r.hostMnt = 4026531841
		b.Run(fmt.Sprintf("host-root/%d-containers", n), func(b *testing.B) {
			b.ReportAllocs()
			e := event.Event{CgroupID: rootCgroup, Namespaces: event.Namespaces{Mnt: 4026531841}}
			for i := 0; i < b.N; i++ {
				if r.Attribute(&e) != nil {
					b.Fatal("container")
				}
			}
		})
	}
}

// BenchmarkMissPath is the price of a miss: a cgroup id resolved to its
// path through open_by_handle_at (root only), and a /proc read.
func BenchmarkMissPath(b *testing.B) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		b.Skip(err)
	}
	cg := FindCgroup2(mi)
	if cg.Mount == "" || os.Geteuid() != 0 {
		b.Skip("needs root and a cgroup2 hierarchy")
	}
	b.Run("cgroup-id-to-path", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := cg.Path(rootCgroup); err != nil {
				b.Fatal(err)
			}
		}
	})
	p := Proc{Root: "/proc"}
	b.Run("proc-start-and-cgroup", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := p.StartTicks(os.Getpid()); err != nil {
				b.Fatal(err)
			}
			if _, err := p.Cgroup(os.Getpid()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
