package agent

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// TestSystemdUnit checks deploy/systemd/mamori-agent.service with
// `systemd-analyze verify` (offline: PID 1 need not be systemd), and that
// the check catches a broken unit.
func TestSystemdUnit(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd)")
	}
	unit, err := os.ReadFile(filepath.Join(repoRoot(), "deploy", "systemd", "mamori-agent.service"))
	if err != nil {
		t.Fatal(err)
	}
	// verify wants the ExecStart binary to exist: point it at one that does.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	good := bytes.ReplaceAll(unit, []byte("/usr/local/bin/mamori "), []byte(self+" "))
	verify := func(name string, data []byte) (string, error) {
		p := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sa, "verify", "--man=no", p).CombinedOutput()
		return string(out), err
	}
	if out, err := verify("mamori-agent.service", good); err != nil || strings.TrimSpace(out) != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	bad := bytes.Replace(good, []byte("ExecStart="), []byte("ExecStrt="), 1)
	if out, err := verify("mamori-agent.service", bad); err == nil {
		t.Fatalf("a unit without ExecStart verified: %s", out)
	}
	// The capabilities are the ones docs/agent.md argues for.
	var caps []string
	for _, line := range strings.Split(string(unit), "\n") {
		if v, ok := strings.CutPrefix(line, "CapabilityBoundingSet="); ok {
			caps = strings.Fields(v)
		}
	}
	slices.Sort(caps)
	if want := agentCaps("CAP_"); !slices.Equal(caps, want) {
		t.Fatalf("unit capabilities %v, want %v", caps, want)
	}
}

// agentCaps are the capabilities the agent needs (docs/agent.md).
func agentCaps(prefix string) []string {
	c := []string{"BPF", "DAC_READ_SEARCH", "NET_ADMIN", "PERFMON", "SYS_ADMIN", "SYS_PTRACE", "SYS_RESOURCE"}
	for i := range c {
		c[i] = prefix + c[i]
	}
	return c
}

func findHelm() string {
	if p, err := exec.LookPath("helm"); err == nil {
		return p
	}
	m, _ := filepath.Glob("/var/cache/mamori/kube/*/bin/helm") // scripts/cluster.sh's cache
	if len(m) > 0 {
		return m[len(m)-1]
	}
	return ""
}

// TestHelmAgentDaemonSet renders the agent's part of the chart and checks
// its privileges: host PID namespace, no host network, not privileged,
// exactly the argued capabilities, no Kubernetes API token and no RBAC,
// read-only mounts but the spool; and that the agent accepts its config.
func TestHelmAgentDaemonSet(t *testing.T) {
	helm := findHelm()
	if helm == "" {
		t.Skip("helm not found (scripts/cluster.sh build caches it)")
	}
	chart := filepath.Join(t.TempDir(), "mamori")
	src := filepath.Join(repoRoot(), "deploy", "helm", "mamori")
	if out, err := exec.Command("cp", "-r", src, chart).CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(chart, "Chart.yaml")); errors.Is(err, os.ErrNotExist) {
		// The chart's Chart.yaml is the cluster chart's (issue 10); until it
		// lands, a minimal one renders the agent's templates.
		os.WriteFile(filepath.Join(chart, "Chart.yaml"), []byte("apiVersion: v2\nname: mamori\nversion: 0.1.0\nappVersion: \"0.1.0\"\n"), 0o644)
	}
	render := func(set ...string) map[string]map[string]any {
		t.Helper()
		args := []string{"template", "t", chart, "--namespace", "mamori", "--show-only", "templates/agent-daemonset.yaml"}
		for _, x := range set {
			args = append(args, "--set", x)
		}
		out, err := exec.Command(helm, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("helm template %v: %v\n%s", set, err, out)
		}
		dec := yaml.NewDecoder(bytes.NewReader(out))
		kinds := map[string]map[string]any{}
		for {
			var doc map[string]any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			if doc != nil {
				kinds[doc["kind"].(string)] = doc
			}
		}
		if kinds["DaemonSet"] == nil {
			t.Fatalf("no DaemonSet in:\n%s", out)
		}
		return kinds
	}
	// mounts returns a rendering's mounts by name: path and whether writable.
	mounts := func(kinds map[string]map[string]any) map[string]string {
		out := map[string]string{}
		c := dig(kinds["DaemonSet"], "spec", "template", "spec", "containers").([]any)[0].(map[string]any)
		for _, m := range c["volumeMounts"].([]any) {
			mm := m.(map[string]any)
			rw := "ro"
			if mm["readOnly"] != true {
				rw = "rw"
			}
			out[mm["name"].(string)] = mm["mountPath"].(string) + " " + rw
		}
		return out
	}
	kinds := render("agent.dockerSocket=/var/run/docker.sock")
	for k := range kinds {
		if strings.Contains(k, "Role") {
			t.Errorf("the agent's template binds RBAC (%s): it needs no Kubernetes permission", k)
		}
	}
	ds := kinds["DaemonSet"]
	pod := dig(ds, "spec", "template", "spec").(map[string]any)
	if pod["hostPID"] != true || pod["hostNetwork"] == true || pod["automountServiceAccountToken"] != false {
		t.Errorf("pod: hostPID %v hostNetwork %v automount %v", pod["hostPID"], pod["hostNetwork"], pod["automountServiceAccountToken"])
	}
	c := pod["containers"].([]any)[0].(map[string]any)
	sc := c["securityContext"].(map[string]any)
	var add []string
	for _, x := range dig(sc, "capabilities", "add").([]any) {
		add = append(add, x.(string))
	}
	slices.Sort(add)
	if sc["privileged"] != false || sc["readOnlyRootFilesystem"] != true || !slices.Equal(add, agentCaps("")) ||
		!slices.Equal(dig(sc, "capabilities", "drop").([]any), []any{"ALL"}) {
		t.Errorf("securityContext %v", sc)
	}
	// The default host modules (anti-malware, integrity, log inspection):
	// the host's root and logs read-only; the state directory is the only
	// writable mount.
	ms := mounts(kinds)
	for name, m := range ms {
		if name != "state" && strings.HasSuffix(m, " rw") {
			t.Errorf("mount %s (%s) is writable", name, m)
		}
	}
	for name, want := range map[string]string{"state": "/var/lib/mamori/agent rw", "host-root": "/host ro", "host-log": "/var/log ro",
		"host-journal": "/run/log/journal ro"} {
		if ms[name] != want {
			t.Errorf("mount %s: %q, want %q", name, ms[name], want)
		}
	}
	// Every host module off: none of their access.
	off := mounts(render("agent.hostModules.antimalware=false", "agent.hostModules.integrity=false", "agent.hostModules.loginspect=false"))
	for _, name := range []string{"host-root", "host-log", "host-journal"} {
		if _, ok := off[name]; ok {
			t.Errorf("host modules off: mount %s rendered", name)
		}
	}
	// The firewall: the host network; block-mode anti-malware: the host's root writable.
	fw := render("agent.hostModules.firewall=true", "agent.hostRootWritable=true")
	fpod := dig(fw["DaemonSet"], "spec", "template", "spec").(map[string]any)
	if fpod["hostNetwork"] != true || fpod["dnsPolicy"] != "ClusterFirstWithHostNet" {
		t.Errorf("firewall on: hostNetwork %v dnsPolicy %v", fpod["hostNetwork"], fpod["dnsPolicy"])
	}
	if m := mounts(fw)["host-root"]; m != "/host rw" {
		t.Errorf("hostRootWritable: host-root %q", m)
	}
	if sa := kinds["ServiceAccount"]; sa == nil || sa["automountServiceAccountToken"] != false {
		t.Errorf("service account %v", sa)
	}
	// The rendered configuration is one the agent accepts.
	cfgText := dig(kinds["ConfigMap"], "data", "agent.yaml").(string)
	cfg, err := ParseConfig("configmap agent.yaml", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Modules.Runtime.HostRoot != "/proc/1/root" || cfg.Modules.Runtime.Docker != "/var/run/docker.sock" || cfg.Server.URL == "" {
		t.Errorf("rendered config %+v", cfg)
	}
}

func dig(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}
