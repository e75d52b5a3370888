package container

import (
	"reflect"
	"strings"
	"testing"
)

const (
	hexA = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	hexB = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	uid  = "8a4b2c3d-1111-2222-3333-444455556666"
)

func TestParseCgroupPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want CgroupRef
	}{
		// containerd (ctr, nerdctl): /<namespace>/<id>
		{"/default/c1", CgroupRef{Runtime: RuntimeContainerd, Namespace: "default", ID: "c1", Guess: true}},
		{"/mamori-0a1b2c/c-123", CgroupRef{Runtime: RuntimeContainerd, Namespace: "mamori-0a1b2c", ID: "c-123", Guess: true}},
		// Docker
		{"/docker/" + hexA, CgroupRef{Runtime: RuntimeDocker, ID: hexA}},
		{"/system.slice/docker-" + hexA + ".scope", CgroupRef{Runtime: RuntimeDocker, ID: hexA}},
		// CRI, cgroupfs driver: burstable, besteffort, guaranteed (no QoS level)
		{"/kubepods/burstable/pod" + uid + "/" + hexA, CgroupRef{Runtime: RuntimeCRI, ID: hexA, PodUID: uid}},
		{"/kubepods/besteffort/pod" + uid + "/" + hexA, CgroupRef{Runtime: RuntimeCRI, ID: hexA, PodUID: uid}},
		{"/kubepods/pod" + uid + "/" + hexA, CgroupRef{Runtime: RuntimeCRI, ID: hexA, PodUID: uid}},
		// CRI, systemd driver
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice/cri-containerd-" + hexA + ".scope",
			CgroupRef{Runtime: RuntimeCRI, ID: hexA, PodUID: uid}},
		{"/kubepods.slice/kubepods-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice/cri-containerd-" + hexA + ".scope",
			CgroupRef{Runtime: RuntimeCRI, ID: hexA, PodUID: uid}},
		// CRI-O
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice/crio-" + hexB + ".scope",
			CgroupRef{Runtime: RuntimeCRIO, ID: hexB, PodUID: uid}},
		// kind: a node container holding pods; the innermost wins
		{"/docker/" + hexB + "/kubepods/burstable/pod" + uid + "/" + hexA, CgroupRef{Runtime: RuntimeCRI, ID: hexA, PodUID: uid}},
		// a cgroup namespace shows paths outside its root with ..
		{"/../../docker/" + hexA, CgroupRef{Runtime: RuntimeDocker, ID: hexA}},
		// the host
		{"/", CgroupRef{}},
		{"", CgroupRef{}},
		{"/init.scope", CgroupRef{}},
		{"/system.slice/containerd.service", CgroupRef{}},
		{"/user.slice/user-0.slice/session-1.scope", CgroupRef{}},
		{"/kubepods/burstable", CgroupRef{}},
		{"/kubepods/burstable/pod" + uid, CgroupRef{}},
		{"/docker", CgroupRef{}},
		{"/docker/abc", CgroupRef{}},
		{"/docker/" + strings.ToUpper(hexA), CgroupRef{}}, // not a Docker id
		{"/a/b/c", CgroupRef{}},
		{"/system.slice/docker-" + hexA[:63] + ".scope", CgroupRef{}},
		{"/x/" + strings.Repeat("a", 77), CgroupRef{}},
		{"/-bad/id", CgroupRef{}},
		{"/ns/id\n", CgroupRef{}},
		{"/" + strings.Repeat("a/", 3000), CgroupRef{}},
	} {
		if got := ParseCgroupPath(tc.path); got != tc.want {
			t.Errorf("ParseCgroupPath(%q) = %+v, want %+v", tc.path, got, tc.want)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	hybrid := "9:name=systemd:/t1/c1\n8:pids:/t1/c1\n4:memory:/t1/c1\n1:cpu:/t1/c1\n0::/t1/c1\n"
	pc, err := ParseProcCgroup([]byte(hybrid))
	if err != nil {
		t.Fatal(err)
	}
	if pc.Unified != "/t1/c1" || pc.V1["memory"] != "/t1/c1" || len(pc.V1) != 4 {
		t.Fatalf("%+v", pc)
	}
	ref, p := pc.ContainerRef()
	if ref.ID != "c1" || ref.Namespace != "t1" || p != "/t1/c1" {
		t.Fatalf("ref %+v %s", ref, p)
	}

	// This machine's own processes: the unified root, a v1 memory cgroup
	// of the sandbox's own making.
	v1only := "4:memory:/docker/" + hexA + "\n2:cpuacct:/\n0::/\n"
	pc, err = ParseProcCgroup([]byte(v1only))
	if err != nil {
		t.Fatal(err)
	}
	if ref, p := pc.ContainerRef(); ref.Runtime != RuntimeDocker || p != "/docker/"+hexA {
		t.Fatalf("v1 ref %+v %s", ref, p)
	}
	if ref, _ := (ProcCgroup{Unified: "/"}).ContainerRef(); ref.IsContainer() {
		t.Fatal("root is a container")
	}
	for _, bad := range []string{"garbage", "0::relative\n", "1:cpu\n", strings.Repeat("x", maxProcCgroup+1)} {
		if _, err := ParseProcCgroup([]byte(bad)); err == nil {
			t.Errorf("%.20q accepted", bad)
		}
	}
}

func TestParseStatStart(t *testing.T) {
	// The command may hold spaces and parentheses.
	stat := "1234 (we ird) (x) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	got, err := ParseStatStart([]byte(stat))
	if err != nil || got != 987654 {
		t.Fatalf("%d %v", got, err)
	}
	for _, bad := range []string{"", "1 (x)", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5 0"} {
		if _, err := ParseStatStart([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if !SameStart(9876543210, 987) || SameStart(9876543210, 988) {
		t.Fatal("SameStart")
	}
}

func TestParseMountinfo(t *testing.T) {
	mi := `75 51 0:40 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/a/2/fs:/var/lib/a/1/fs,upperdir=/var/lib/a/3/fs,workdir=/var/lib/a/3/work
76 75 0:43 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
81 75 0:47 / /my\040dir rw shared:5 master:1 - tmpfs tm\134p rw
35 25 0:30 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
bad line
1 2 3:4 / /x - ext4
`
	ms := ParseMountinfo([]byte(mi))
	if len(ms) != 4 { // the bad line and the one without a source are skipped
		t.Fatalf("%d mounts: %+v", len(ms), ms)
	}
	if ms[0].FSType != "overlay" || !strings.Contains(ms[0].SuperOptions, "upperdir=/var/lib/a/3/fs") || ms[0].Dev() != 40 {
		t.Fatalf("%+v", ms[0])
	}
	if o := ms[0].Options(); len(o) != 4 || o[2] != "upperdir=/var/lib/a/3/fs" {
		t.Fatalf("options %q", o)
	}
	if o := (Mount{SuperOptions: `rw,upperdir=/a\054b\040c`}).Options(); len(o) != 2 || o[1] != "upperdir=/a,b c" {
		t.Fatalf("escaped options %q", o)
	}
	if ms[2].MountPoint != "/my dir" || ms[2].Source != `tm\p` {
		t.Fatalf("%+v", ms[2])
	}
	if cg := FindCgroup2([]byte(mi)); cg.Mount != "/sys/fs/cgroup/unified" {
		t.Fatalf("cgroup2 %q", cg.Mount)
	}
	if (Mount{Major: 8, Minor: 1}).Dev() != 8<<8|1 || (Mount{Major: 254, Minor: 300}).Dev() != 0x10fe2c {
		t.Fatal("dev")
	}
	if Unescape(`a\040b\`) != `a b\` || Unescape(`\999`) != `\999` {
		t.Fatal("unescape")
	}
}

func TestCgroupfsPath(t *testing.T) {
	for in, want := range map[string]string{
		"/default/c1": "/default/c1",
		"":            "",
		"kubepods-besteffort-pod123.slice:cri-containerd:" + hexA: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod123.slice/cri-containerd-" + hexA + ".scope",
		"system.slice:docker:" + hexA:                             "/system.slice/docker-" + hexA + ".scope",
		":docker:" + hexA:                                         "/system.slice/docker-" + hexA + ".scope",
		"a:b":                                                     "",
	} {
		if got := cgroupfsPath(in); got != want {
			t.Errorf("cgroupfsPath(%q) = %q, want %q", in, got, want)
		}
		if want != "" && in != "" {
			if ref := ParseCgroupPath(cgroupfsPath(in)); !ref.IsContainer() {
				t.Errorf("%q does not parse back as a container", in)
			}
		}
	}
}

func TestPickRepoDigest(t *testing.T) {
	rd := []string{"other/x@sha256:aaa", "127.0.0.1:5000/mamori-test/busybox@sha256:bbb"}
	for ref, want := range map[string]string{
		"127.0.0.1:5000/mamori-test/busybox:tag": "sha256:bbb",
		"127.0.0.1:5000/mamori-test/busybox":     "sha256:bbb",
		"unrelated:1":                            "sha256:aaa",
	} {
		if got := pickRepoDigest(rd, ref); got != want {
			t.Errorf("pickRepoDigest(%q) = %q, want %q", ref, got, want)
		}
	}
	if got := pickRepoDigest([]string{"garbage", "x@md5:1"}, "x"); got != "" {
		t.Errorf("garbage gave %q", got)
	}
}

func TestPodLabels(t *testing.T) {
	got := podLabels(map[string]string{"app": "web", "io.kubernetes.pod.name": "p", "io.cri-containerd.kind": "sandbox"})
	if !reflect.DeepEqual(got, map[string]string{"app": "web"}) {
		t.Fatal(got)
	}
	if podLabels(map[string]string{"io.kubernetes.pod.uid": "x"}) != nil {
		t.Fatal("internal labels kept")
	}
}
