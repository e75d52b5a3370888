package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c := Defaults()
	if c.Node == "" || c.Spool.Dir != DefaultSpoolDir || c.Spool.Fsync != FsyncBatch ||
		c.Modules.Runtime.Sensor != "auto" || !c.RuntimeEnabled() || !c.Modules.Runtime.MitigationEnabled() {
		t.Fatalf("defaults %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("a.yaml", []byte(`
node: n1
events: {file: /tmp/e.jsonl, queue: 100}
spool: {dir: /tmp/s, maxBytes: 10485760, segmentBytes: 1048576, fsync: always, fsyncInterval: 2s}
statsListen: 127.0.0.1:9477
modules:
  runtime:
    sensor: fallback
    syscallHooks: tracepoint
    rules: [/etc/mamori/rules.yaml]
    mitigation: false
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Node != "n1" || c.Events.Queue != 100 || c.Spool.FsyncInterval != 2*time.Second || c.Spool.Fsync != "always" ||
		c.Modules.Runtime.Sensor != "fallback" || c.Modules.Runtime.SyscallHooks != "tracepoint" || c.Modules.Runtime.MitigationEnabled() || len(c.Modules.Runtime.Rules) != 1 {
		t.Fatalf("parsed %+v", c)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"modules:\n  runtime:\n    sensr: ebpf\n", "line 3: field sensr not found"},
		{"spool: {fsync: sometimes}\n", `spool.fsync: "sometimes" is not always, batch or never`},
		{"modules: {runtime: {sensor: kprobe}}\n", "modules.runtime.sensor"},
		{"modules: {runtime: {syscallHooks: fentry}}\n", "modules.runtime.syscallHooks"},
		{"statsListen: 0.0.0.0:9477\n", "statsListen: \"0.0.0.0:9477\" is not a loopback address"},
		{"server: {url: https://x, tokenFile: /t}\nmodules: {runtime: {rules: [/r.yaml]}}\n", "with a server its rulesets come from the server"},
		{"spool: {maxBytes: 1000, segmentBytes: 5000}\n", "spool.segmentBytes (5000) is over spool.maxBytes (1000)"},
		{"modules: {runtime: {ringBufferBytes: 5000}}\n", "not a power of two"},
		{"node: [a, b]\n", "cannot unmarshal"},
		{"&a [*a, *a]", ""}, // an alias bomb shape: an error, not a hang
	} {
		_, err := ParseConfig("a.yaml", []byte(c.yaml))
		if err == nil {
			t.Errorf("%q: no error", c.yaml)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %q, want %q", c.yaml, err, c.want)
		}
	}
}

func TestLoadConfigTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.yaml")
	os.WriteFile(p, []byte("node: x\n"+strings.Repeat("# pad\n", MaxConfigSize/6+10)), 0o600)
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), "over") {
		t.Fatalf("oversized config: %v", err)
	}
}

// TestExampleConfig keeps the documented example (docs/agent.md) valid.
func TestExampleConfig(t *testing.T) {
	data, err := os.ReadFile("../../docs/agent.md")
	if err != nil {
		t.Skip("docs/agent.md not written yet")
	}
	s := string(data)
	i := strings.Index(s, "```yaml\n# agent.yaml")
	if i < 0 {
		t.Fatal("docs/agent.md has no ```yaml # agent.yaml example")
	}
	s = s[i+len("```yaml\n"):]
	s = s[:strings.Index(s, "```")]
	c, err := ParseConfig("docs/agent.md", []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.URL == "" {
		t.Fatal("the example names no server")
	}
}

func timeNow() time.Time { return time.Now() }
