package integrity

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func keys(objs []Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	return out
}

func byKey(objs []Object) map[string]map[string]string {
	m := map[string]map[string]string{}
	for _, o := range objs {
		m[o.Key] = o.Attrs
	}
	return m
}

func TestParseUsers(t *testing.T) {
	passwd := "# comment\nroot:x:0:0:root:/root:/bin/bash\r\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/bash\nbroken:x:1\n\nroot:x:0:0:again:/:/bin/sh\nbob:x:1001:1001::/home/bob:/usr/sbin/nologin\ncarol:x:1002:1002::/home/carol:/bin/sh\n"
	shadow := "root:$6$salt$abc:19000:0:99999:7:::\nalice:!$y$j9T$s$h:19001:0:99999:7:::\nbob:*:19000::::::\ncarol::19002:0:99999:7:30:19999:\n"
	objs := ParseUsers([]byte(passwd), []byte(shadow), []byte("k"))
	if got, want := keys(objs), []string{"root", "alice", "root#2", "bob", "carol"}; !slices.Equal(got, want) {
		t.Fatalf("keys %q, want %q", got, want)
	}
	m := byKey(objs)
	if a := m["root"]; a["password"] != "set" || a["algorithm"] != "sha512" || a["uid"] != "0" || len(a["passwordDigest"]) != 16 || a["lastChange"] != "19000" {
		t.Errorf("root %v", a)
	}
	if a := m["alice"]; a["password"] != "locked" || a["algorithm"] != "yescrypt" || a["gecos"] != "Alice,,," || a["home"] != "/home/alice" {
		t.Errorf("alice %v", a)
	}
	if a := m["bob"]; a["password"] != "none" || a["passwordDigest"] != "" {
		t.Errorf("bob %v", a)
	}
	if a := m["carol"]; a["password"] != "empty" || a["inactive"] != "30" || a["expire"] != "19999" {
		t.Errorf("carol %v", a)
	}
	for _, o := range objs {
		for k, v := range o.Attrs {
			if strings.Contains(v, "$") {
				t.Errorf("%s %s = %q looks like a hash", o.Key, k, v)
			}
		}
	}
	// The digest follows the key and the hash, nothing else.
	other := byKey(ParseUsers([]byte(passwd), []byte(shadow), []byte("other key")))
	if other["root"]["passwordDigest"] == m["root"]["passwordDigest"] {
		t.Error("digest does not depend on the key")
	}
	// No shadow (unreadable): passwd attributes only.
	if a := byKey(ParseUsers([]byte(passwd), nil, nil))["root"]; a["password"] != "" || a["shell"] != "/bin/bash" {
		t.Errorf("without shadow %v", a)
	}
}

func TestParseGroups(t *testing.T) {
	objs := ParseGroups([]byte("root:x:0:\nsudo:x:27:bob,alice,bob\nbad\ndocker:x:999: carol \n"))
	if got := keys(objs); !slices.Equal(got, []string{"root", "sudo", "docker"}) {
		t.Fatalf("keys %q", got)
	}
	if a := byKey(objs)["sudo"]; a["members"] != "alice,bob" || a["gid"] != "27" {
		t.Errorf("sudo %v", a)
	}
	if a := byKey(objs)["docker"]; a["members"] != "carol" {
		t.Errorf("docker %v", a)
	}
}

func TestSudoersCollector(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(s), 0o440); err != nil {
			t.Fatal(err)
		}
	}
	write("/etc/sudoers", `# comment
Defaults	env_reset
Defaults	secure_path="/usr/sbin:/usr/bin"   # trailing comment
root	ALL=(ALL:ALL) ALL
#1000 ALL=(#0) NOPASSWD: ALL
Cmnd_Alias SVC = /usr/bin/systemctl restart nginx, \
                 /usr/bin/systemctl reload nginx
#includedir /etc/sudoers.d
@include extra
`)
	write("/etc/sudoers.d/10-ops", "%ops ALL=(ALL) NOPASSWD: SVC\n")
	write("/etc/sudoers.d/old~", "ignored ALL=(ALL) ALL\n")
	write("/etc/sudoers.d/x.bak", "ignored ALL=(ALL) ALL\n")
	write("/etc/extra", "deploy ALL=(root) /usr/bin/apt-get\n@include /etc/extra\n") // include loop
	objs, err := SudoersCollector{}.Collect(context.Background(), Env{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"/etc/sudoers: Defaults env_reset",
		`/etc/sudoers: Defaults secure_path="/usr/sbin:/usr/bin"`,
		"/etc/sudoers: root ALL=(ALL:ALL) ALL",
		"/etc/sudoers: #1000 ALL=(#0) NOPASSWD: ALL",
		"/etc/sudoers: Cmnd_Alias SVC = /usr/bin/systemctl restart nginx, /usr/bin/systemctl reload nginx",
		"/etc/sudoers.d/10-ops: %ops ALL=(ALL) NOPASSWD: SVC",
		"/etc/sudoers: #includedir /etc/sudoers.d",
		"/etc/extra: deploy ALL=(root) /usr/bin/apt-get",
		"/etc/extra: @include /etc/extra",
		"/etc/sudoers: @include extra",
	}
	if got := keys(objs); !slices.Equal(got, want) {
		t.Errorf("entries\n got %q\nwant %q", got, want)
	}
	if a := byKey(objs)["/etc/sudoers: Cmnd_Alias SVC = /usr/bin/systemctl restart nginx, /usr/bin/systemctl reload nginx"]; a["line"] != "6" {
		t.Errorf("continued entry %v", a)
	}
}

func TestServiceCollector(t *testing.T) {
	root := t.TempDir()
	mk := func(p, s string) {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ln := func(target, p string) {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.Symlink(target, full); err != nil {
			t.Fatal(err)
		}
	}
	mk("/lib/systemd/system/ssh.service", "[Service]\nExecStart=/usr/sbin/sshd -D\n")
	mk("/lib/systemd/system/getty@.service", "[Service]\nExecStart=-/sbin/agetty %I\n")
	mk("/etc/systemd/system/ssh.service.d/override.conf", "[Service]\nExecStart=\n")
	ln("../../../../lib/systemd/system/ssh.service", "/etc/systemd/system/multi-user.target.wants/ssh.service")
	ln("../../../../lib/systemd/system/getty@.service", "/etc/systemd/system/getty.target.wants/getty@tty1.service")
	ln("/lib/systemd/system/gone.service", "/etc/systemd/system/multi-user.target.wants/gone.service")
	ln("/dev/null", "/etc/systemd/system/rpcbind.service")
	objs, err := ServiceCollector{}.Collect(context.Background(), Env{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(objs); !slices.Equal(got, []string{"getty@tty1.service", "gone.service", "rpcbind.service", "ssh.service"}) {
		t.Fatalf("units %q", got)
	}
	m := byKey(objs)
	if a := m["ssh.service"]; a["wantedBy"] != "/etc/systemd/system/multi-user.target.wants" || a["unitFile"] != "/lib/systemd/system/ssh.service" ||
		a["execStart"] != "/usr/sbin/sshd -D" || len(a["sha256"]) != 64 || a["dropIns"] != "/etc/systemd/system/ssh.service.d/override.conf" {
		t.Errorf("ssh %v", a)
	}
	if a := m["getty@tty1.service"]; a["unitFile"] != "/lib/systemd/system/getty@.service" {
		t.Errorf("getty %v", a)
	}
	if a := m["rpcbind.service"]; a["masked"] != "true" {
		t.Errorf("masked %v", a)
	}
	if a := m["gone.service"]; a["unitFile"] != "(missing)" {
		t.Errorf("dangling %v", a)
	}
}

func TestPackageCollector(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "var/lib/dpkg"), 0o755)
	status := `Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4

Package: openssl
Status: install ok installed
Architecture: amd64
Version: 3.0.11-1~deb12u2

Package: removed
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0
`
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := PackageCollector{}.Collect(context.Background(), Env{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(objs); !slices.Equal(got, []string{"deb:libc6:amd64", "deb:openssl:amd64"}) {
		t.Fatalf("keys %q", got)
	}
	if a := byKey(objs)["deb:libc6:amd64"]; a["version"] != "2.36-9+deb12u4" || a["source"] != "glibc" || a["manager"] != "dpkg" {
		t.Errorf("libc6 %v", a)
	}
	// A corrupt database is an error, not an empty package list.
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), []byte("\x00\x01garbage without fields\n"), 0o644)
	if _, err := (PackageCollector{}).Collect(context.Background(), Env{Root: root}); err == nil {
		t.Error("corrupt status accepted")
	}
}

func TestModulesFixture(t *testing.T) {
	// This kernel has no loadable modules: the collector is tested on a
	// recorded /proc/modules.
	old, err := ModuleCollector{}.Collect(context.Background(), Env{Proc: "testdata/proc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != 9 {
		t.Fatalf("%d modules", len(old))
	}
	if a := byKey(old)["vboxdrv"]; a["taint"] != "OE" || a["deps"] != "vboxnetadp,vboxnetflt" || a["size"] != "696320" {
		t.Errorf("vboxdrv %v", a)
	}
	cur, err := ModuleCollector{}.Collect(context.Background(), Env{Proc: "testdata/proc-changed"})
	if err != nil {
		t.Fatal(err)
	}
	sortObjects(old)
	sortObjects(cur)
	events := diffObjects(old, cur, []Collector{ModuleCollector{}}, SourcePoll, time.Now())
	var got []string
	for _, e := range events {
		got = append(got, e.Key+" "+string(e.Change)+" "+strings.Join(e.Changed, ","))
	}
	// nf_tables' refcount changed: volatile, not reported.
	want := []string{"br_netfilter removed ", "bridge modified deps", "diamorphine added ", "overlay modified size"}
	if !slices.Equal(got, want) {
		t.Errorf("events\n got %q\nwant %q", got, want)
	}
	if e := events[2]; e.After["taint"] != "OE" || e.Rule != "modules" || e.Severity != SeverityHigh {
		t.Errorf("new module event %+v", e)
	}
	// Missing /proc/modules (no module support): nothing, no error.
	if objs, err := (ModuleCollector{}).Collect(context.Background(), Env{Proc: t.TempDir()}); err != nil || len(objs) != 0 {
		t.Errorf("no /proc/modules: %v %v", objs, err)
	}
	if _, err := ParseModules([]byte("short line\n")); err == nil {
		t.Error("malformed /proc/modules accepted")
	}
}

func TestPortsFixture(t *testing.T) {
	objs, err := PortCollector{}.Collect(context.Background(), Env{Proc: "testdata/proc"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tcp/0.0.0.0:22", "tcp/127.0.0.1:8080", "tcp6/127.0.0.1:9000", "tcp6/[2001:db8::1]:443", "tcp6/[::]:22", "udp/0.0.0.0:68", "udp/127.0.0.1:53"}
	got := keys(objs)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("ports\n got %q\nwant %q", got, want)
	}
	if a := byKey(objs)["tcp/127.0.0.1:8080"]; a["uid"] != "1000" || a["inode"] != "258604" || a["port"] != "8080" {
		t.Errorf("8080 %v", a)
	}
	if _, err := ParseProcNet([]byte("header\n 0: nonsense:zz 00000000:0000 0A 0 0 0 0 0 1\n"), "tcp"); err == nil {
		t.Error("bad address accepted")
	}
}

// TestPortsLive opens a listener on loopback and finds it, with this
// process as its owner, through the real /proc.
func TestPortsLive(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	objs, err := PortCollector{}.Collect(context.Background(), Env{Proc: "/proc"})
	if err != nil {
		t.Fatal(err)
	}
	a := byKey(objs)["tcp/127.0.0.1:"+strconv.Itoa(port)]
	exe, _ := os.Executable()
	if a == nil || a["pid"] != strconv.Itoa(os.Getpid()) || a["exe"] != exe {
		t.Errorf("own listener: %v (pid %d, exe %s)", a, os.Getpid(), exe)
	}
}

// TestMonitorReportsNewPort: a listener opened while the monitor runs is
// reported by the next poll, and again when it closes.
func TestMonitorReportsNewPort(t *testing.T) {
	root := fixture(t)
	rm := startMonitor(t, root, testRules(t), WatchNone, nil, []Collector{PortCollector{}}, WithPollInterval(100*time.Millisecond))
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	key := "tcp/" + ln.Addr().String()
	e := rm.log.wait(t, 5*time.Second, KindPort, key, Added)
	if e.Source != SourcePoll || e.After["pid"] != strconv.Itoa(os.Getpid()) || e.After["address"] != "127.0.0.1" {
		t.Errorf("port event %+v", e)
	}
	ln.Close()
	e = rm.log.wait(t, 5*time.Second, KindPort, key, Removed)
	if e.Before["port"] != strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) {
		t.Errorf("closed port event %+v", e)
	}
}
