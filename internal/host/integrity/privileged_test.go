package integrity

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The privileged tests (MAMORI_TEST_HOST=1, root) mount file systems of
// their own (a loop-mounted ext4 image, a tmpfs) and put fanotify marks
// and inotify watches only there; they unmount and detach what they
// mounted.

func requireHost(t *testing.T) {
	t.Helper()
	if os.Getenv("MAMORI_TEST_HOST") != "1" {
		t.Skip("MAMORI_TEST_HOST=1 not set (privileged file system test)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// mountFS mounts a fresh file system of kind "ext4" (a loop image) or
// "tmpfs" and returns its mount point.
func mountFS(t *testing.T, kind string) string {
	t.Helper()
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	switch kind {
	case "tmpfs":
		if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=128m,mode=0755"); err != nil {
			t.Fatalf("mount tmpfs: %v", err)
		}
	case "ext4":
		if _, err := exec.LookPath("mkfs.ext4"); err != nil {
			t.Skip("mkfs.ext4 not installed")
		}
		img := filepath.Join(dir, "fs.img")
		f, err := os.Create(img)
		if err != nil {
			t.Fatal(err)
		}
		f.Truncate(128 << 20)
		f.Close()
		sh(t, "mkfs.ext4", "-q", "-F", "-N", "65536", img)
		sh(t, "mount", "-o", "loop,acl,user_xattr", img, mnt)
	}
	t.Cleanup(func() {
		// The monitor is stopped by then (cleanups run last-in first-out).
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	return mnt
}

// copyFixture builds the fixture tree on the mounted file system.
func copyFixture(t *testing.T, mnt string) string {
	t.Helper()
	src := fixture(t)
	sh(t, "cp", "-a", src+"/.", mnt)
	return mnt
}

func TestPrivilegedRealtime(t *testing.T) {
	requireHost(t)
	for _, fs := range []string{"ext4", "tmpfs"} {
		for _, mode := range []WatchMode{WatchFanotify, WatchInotify} {
			t.Run(fs+"/"+string(mode), func(t *testing.T) {
				root := copyFixture(t, mountFS(t, fs))
				rm := monitorScenario(t, root, mode)
				rm.stop()
			})
		}
	}
}

func TestPrivilegedOverflow(t *testing.T) {
	requireHost(t)
	for _, mode := range []WatchMode{WatchFanotify, WatchInotify} {
		t.Run(string(mode), func(t *testing.T) {
			overflowScenario(t, copyFixture(t, mountFS(t, "ext4")), mode)
		})
	}
}

// TestPrivilegedAttributes: capabilities, ACLs and other extended
// attributes are recorded, decoded in events and compared.
func TestPrivilegedAttributes(t *testing.T) {
	requireHost(t)
	root := copyFixture(t, mountFS(t, "ext4"))
	rm := startMonitor(t, root, testRules(t), WatchFanotify, nil, fileCollectors())
	full := func(p string) string { return filepath.Join(root, p) }
	const wait = 5 * time.Second

	// cap_net_raw+ep, revision 2 (what setcap writes).
	capv := make([]byte, 20)
	binary.LittleEndian.PutUint32(capv[0:], vfsCapRevision2|vfsCapFlagsEffect)
	binary.LittleEndian.PutUint32(capv[4:], 1<<13) // CAP_NET_RAW
	if err := unix.Setxattr(full("/usr/bin/ls"), xattrCapability, capv, 0); err != nil {
		t.Fatal(err)
	}
	e := rm.log.wait(t, wait, KindFile, "/usr/bin/ls", Modified)
	if e.After["caps"] != "cap_net_raw=ep" || e.Before["caps"] != "" || !contains(e.Changed, "caps") || e.Severity != SeverityHigh {
		t.Errorf("caps event %+v", e)
	}
	if out, err := exec.Command("getcap", full("/usr/bin/ls")).Output(); err == nil && !strings.Contains(string(out), "cap_net_raw=ep") {
		t.Errorf("getcap says %q", out)
	}

	// An ACL granting uid 1000 write.
	if _, err := exec.LookPath("setfacl"); err != nil {
		t.Skip("setfacl not installed")
	}
	sh(t, "setfacl", "-m", "u:1000:rw", full("/etc/group"))
	e = rm.log.wait(t, wait, KindFile, "/etc/group", Modified)
	if e.After["acl"] != "user::rw-,user:1000:rw-,group::r--,mask::rw-,other::r--" || !contains(e.Changed, "acl") {
		t.Errorf("acl event %+v", e)
	}
	// A user xattr.
	if err := unix.Setxattr(full("/etc/passwd"), "user.origin", []byte("dropper"), 0); err != nil {
		t.Fatal(err)
	}
	e = rm.log.wait(t, wait, KindFile, "/etc/passwd", Modified)
	if e.After["xattrs"] != `user.origin="dropper"` || !contains(e.Changed, "xattrs") {
		t.Errorf("xattr event %+v", e)
	}
	// An owner change.
	if err := os.Lchown(full("/etc/ssh/sshd_config"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	e = rm.log.wait(t, wait, KindFile, "/etc/ssh/sshd_config", Modified)
	if e.Before["uid"] != "0" || e.After["uid"] != "1000" || !contains(e.Changed, "gid") {
		t.Errorf("chown event %+v", e)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
