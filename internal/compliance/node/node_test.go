package node

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mamori/internal/compliance"
	"mamori/internal/compliance/posture"
)

// fixture writes a node root the test owns (never the real /etc).
func fixture(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.Contains(p, "kubelet") {
			mode = 0o600
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var baseFiles = map[string]string{
	"/etc/passwd": "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\nops:x:1000:1000::/home/ops:/bin/bash\n",
	"/etc/sudoers": "Defaults env_reset\n# comment\nUser_Alias ADMINS = ops\nroot ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n" +
		"@includedir /etc/sudoers.d\n",
	"/etc/sudoers.d/README":         "# nothing\n",
	"/etc/sudoers.d/ignored.conf":   "mallory ALL=(ALL) NOPASSWD: ALL\n",
	"/etc/ssh/sshd_config":          "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\nMatch User x\n  PasswordAuthentication yes\n",
	"/etc/ssh/sshd_config.d/a.conf": "PermitRootLogin no\nPasswordAuthentication no\n",
	"/var/lib/kubelet/config.yaml": "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n" +
		"authentication:\n  anonymous:\n    enabled: false\n  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\n" +
		"authorization:\n  mode: Webhook\nreadOnlyPort: 0\nserverTLSBootstrap: true\n",
	// proc fixture: sshd on 0.0.0.0:22, a loopback listener, a redis on :6379 (added by tests).
	"/proc/1/net/tcp": "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0\n" +
		"   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2222 1 0\n" +
		"   2: 0100007F:0050 0200007F:1234 01 00000000:00000000 00:00000000 00000000     0        0 3333 1 0\n",
}

func collect(t *testing.T, root string) *posture.Node {
	t.Helper()
	n, err := Collect(context.Background(), Options{Root: root, Proc: filepath.Join(root, "proc"), Node: "n1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCollectBaseline(t *testing.T) {
	n := collect(t, fixture(t, baseFiles))
	if len(n.Warnings) != 0 {
		t.Errorf("warnings: %v", n.Warnings)
	}
	if len(n.Users) != 2 || n.Users[1].Name != "ops" {
		t.Errorf("users %+v", n.Users)
	}
	if len(n.Sudoers) != 2 {
		t.Fatalf("sudoers %+v", n.Sudoers)
	}
	for _, r := range n.Sudoers {
		if !r.Allowed {
			t.Errorf("baseline rule not allowed: %+v", r)
		}
	}
	for _, it := range n.SSHD {
		if it.Status != posture.Pass {
			t.Errorf("sshd %s: %s (%s from %s)", it.ID, it.Status, it.Actual, it.Source)
		}
	}
	if len(n.Listening) != 2 || !n.Listening[0].Expected || n.Listening[0].Port != 22 || !n.Listening[1].Expected || n.Listening[1].Address != "127.0.0.1" {
		t.Errorf("listening %+v", n.Listening)
	}
	if !n.HasKubelet || len(n.Kubelet) < 9 {
		t.Fatalf("kubelet %+v", n.Kubelet)
	}
	for _, it := range n.Kubelet {
		// The fixture is owned by the test's user: 4.1.10 passes only as root.
		if it.Status != posture.Pass && !(it.ID == "CIS-K8s-4.1.10" && os.Getuid() != 0) {
			t.Errorf("kubelet %s: %s (%s)", it.ID, it.Status, it.Actual)
		}
	}
}

// TestViolationsFlipControls: each change to the node flips exactly its
// control through the assessment.
func TestViolationsFlipControls(t *testing.T) {
	cases := []struct {
		name    string
		edit    map[string]string
		control string
	}{
		{"user added to sudoers", map[string]string{"/etc/sudoers.d/mallory": "mallory ALL=(ALL) NOPASSWD: ALL\n"}, "4.5.4"},
		{"second root account", map[string]string{"/etc/passwd": baseFiles["/etc/passwd"] + "toor:x:0:0::/root:/bin/sh\n"}, "4.5.4"},
		{"ssh root login", map[string]string{"/etc/ssh/sshd_config.d/a.conf": "PasswordAuthentication no\n"}, "4.5.4"},
		{"anonymous kubelet", map[string]string{"/var/lib/kubelet/config.yaml": strings.Replace(baseFiles["/var/lib/kubelet/config.yaml"], "enabled: false", "enabled: true", 1)}, "4.3.2"},
		{"kubelet without rotation", map[string]string{"/var/lib/kubelet/config.yaml": baseFiles["/var/lib/kubelet/config.yaml"] + "rotateCertificates: false\n"}, "4.3.5"},
		{"unexpected listener", map[string]string{"/proc/1/net/tcp": baseFiles["/proc/1/net/tcp"] +
			"   3: 00000000:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0\n"}, "4.5.1"},
	}
	assess := func(n *posture.Node) map[string]compliance.Status {
		ev := &compliance.Evidence{Nodes: []posture.Node{*n}}
		r := compliance.Assess(ev, compliance.Settings{}, time.Now())
		out := map[string]compliance.Status{}
		for _, c := range r.Controls {
			out[c.ID] = c.Status
		}
		return out
	}
	root := fixture(t, baseFiles)
	base := assess(collect(t, root))
	for _, id := range []string{"4.5.4", "4.5.1", "4.3.5"} {
		if base[id] != compliance.StatusPass && !(id == "4.3.5" && os.Getuid() != 0) {
			t.Fatalf("baseline %s: %s", id, base[id])
		}
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			files := map[string]string{}
			for k, v := range baseFiles {
				files[k] = v
			}
			for k, v := range c.edit {
				files[k] = v
			}
			got := assess(collect(t, fixture(t, files)))
			for id, st := range got {
				want := base[id]
				if id == c.control {
					want = compliance.StatusFail
				}
				if st != want {
					t.Errorf("%s: %s, want %s", id, st, want)
				}
			}
		})
	}
}

func TestHostileFiles(t *testing.T) {
	root := fixture(t, map[string]string{
		"/etc/passwd":  strings.Repeat("x:", 100) + "\n::::::\nbad:x:notanumber:0::/:/bin/sh\n",
		"/etc/sudoers": "no equals sign here\n=\n \\\n",
	})
	// A symlink escaping the root is refused, not followed.
	if err := os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../etc/shadow", filepath.Join(root, "etc/ssh/sshd_config")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "var/lib/kubelet/config.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	n := collect(t, root)
	if len(n.Users) != 0 || len(n.Sudoers) != 0 || len(n.SSHD) != 0 || n.HasKubelet {
		t.Fatalf("hostile files gave %+v", n)
	}
	if _, err := Collect(context.Background(), Options{Root: filepath.Join(root, "missing")}, time.Now()); err == nil {
		t.Fatal("missing root accepted")
	}
}

func FuzzSudoers(f *testing.F) {
	f.Add(baseFiles["/etc/sudoers"])
	f.Add("a,b host=(ALL) NOPASSWD: /bin/x \\\n , /bin/y\n")
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range parseSudoers("/etc/sudoers", s, DefaultAllowedSudoers) {
			if r.Who == "" || strings.Contains(r.Who, ",") {
				t.Fatalf("bad rule %+v", r)
			}
		}
	})
}

// TestListeningNetNS: the sockets are read from NetNS (default the node's
// init, Proc/1); a /proc without socket tables leaves them not read (4.5.1
// not assessed) rather than "none listening".
func TestListeningNetNS(t *testing.T) {
	files := map[string]string{}
	for k, v := range baseFiles {
		files[k] = v
	}
	files["/proc/4242/net/tcp"] = files["/proc/1/net/tcp"] +
		"   3: 00000000:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0\n"
	root := fixture(t, files)
	n, err := Collect(context.Background(), Options{Root: root, Proc: filepath.Join(root, "proc"),
		NetNS: filepath.Join(root, "proc", "4242"), Node: "n1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !n.ListeningRead || len(n.Listening) != 3 || n.Listening[2].Port != 6379 || n.Listening[2].Expected {
		t.Fatalf("listening of NetNS: read %v %+v", n.ListeningRead, n.Listening)
	}
	empty := fixture(t, map[string]string{"/etc/passwd": baseFiles["/etc/passwd"], "/proc/1/comm": "init\n"})
	n, err = Collect(context.Background(), Options{Root: empty, Proc: filepath.Join(empty, "proc"), Node: "n1"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if n.ListeningRead || len(n.Warnings) == 0 {
		t.Fatalf("no socket table: read %v, warnings %v", n.ListeningRead, n.Warnings)
	}
	r := compliance.Assess(&compliance.Evidence{Nodes: []posture.Node{*n}}, compliance.Settings{}, time.Now())
	for _, c := range r.Controls {
		if c.ID == "4.5.1" && c.Status != compliance.StatusNotAssessed {
			t.Fatalf("4.5.1 without socket tables: %s (%s)", c.Status, c.Reason)
		}
	}
}
