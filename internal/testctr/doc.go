// Package testctr is the test harness of the runtime end-to-end tests: a
// real containerd (Debian's containerd + runc) per test binary with its
// root, state, runc root and socket under a temp dir, test images built in
// the test with go-containerregistry (busybox-static, random tags) and
// imported into it, containers run and exec'd into with ctr, CRI pods run
// through containerd's CRI plugin the way kubelet runs them, an optional
// dockerd on the same containerd, restarts, and network namespaces with
// veth pairs for network tests. Everything it starts or creates is removed
// at the end (tasks, containers, snapshots, images, mounts, cgroups, the
// daemons, the network namespaces).
//
// Tests run only with MAMORI_TEST_RUNTIME=1 (root; apt-get install
// containerd runc busybox-static), and the Docker ones with
// MAMORI_TEST_DOCKER=1 too (docker.io). Use one Shared per test package:
//
//	var ctrd testctr.Shared
//
//	func TestMain(m *testing.M) { os.Exit(ctrd.Main(m)) }
//
//	func TestSomething(t *testing.T) {
//		d := ctrd.Get(t) // skips without MAMORI_TEST_RUNTIME=1
//		img := d.BuildImage(t, "", testctr.ImageSpec{})
//		c := d.Run(t, testctr.RunSpec{Image: img, Args: []string{"sleep", "1000"}})
//		out, err := c.Exec(ctx, "cat", "/etc/passwd")
//		...
//	}
//
// The cgroup of a containerd container is /<namespace>/<id> (each daemon
// has a namespace of its own, "mamori-<random>"); of a CRI container
// <CgroupPrefix>/besteffort/pod<uid>/<id> (the prefix keeps a kubelet on
// the same machine from removing the test's pod cgroups); of a Docker
// container /docker/<id>.
package testctr
