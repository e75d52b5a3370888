package event

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"mamori/internal/model"
)

func TestSanitize(t *testing.T) {
	cases := []struct {
		in    string
		limit int
		want  string
	}{
		{"/usr/bin/ls", 0, "/usr/bin/ls"},
		{"héllo wörld", 0, "héllo wörld"},
		{"a\nb\r\tc", 0, `a\nb\r\tc`},
		{"esc\x1b[31mred", 0, `esc\x1b[31mred`},
		{"bad\xff\xfeutf8", 0, `bad\xff\xfeutf8`},
		{`back\slash`, 0, `back\\slash`},
		{"nul\x00byte", 0, `nul\x00byte`},
		{"del\x7f", 0, `del\x7f`},
		{"c1\u0085x", 0, `c1\u0085x`},
		{"rtl\u202egnp.exe", 0, `rtl\u202egnp.exe`},
		{"abcdef", 3, "abc…(+3 bytes)"},
		{"abc", 3, "abc"},
		{"\xe2\x82", 0, `\xe2\x82`}, // truncated multi-byte rune
	}
	for _, c := range cases {
		if got := Sanitize(c.in, c.limit); got != c.want {
			t.Errorf("Sanitize(%q, %d) = %q, want %q", c.in, c.limit, got, c.want)
		}
	}
}

func TestSanitizeHugeArgv(t *testing.T) {
	arg := strings.Repeat("A\n", 32<<10) // 64 KiB of hostile bytes
	got := Sanitize(arg, DefaultRenderLimit)
	if strings.ContainsAny(got, "\n\r") || !utf8.ValidString(got) {
		t.Fatalf("unsafe output %q", got[:64])
	}
	if len(got) > 3*DefaultRenderLimit || !strings.HasSuffix(got, "…(+64512 bytes)") {
		t.Fatalf("not truncated: %d bytes, tail %q", len(got), got[len(got)-32:])
	}
}

func TestEventStringHostile(t *testing.T) {
	e := &Event{
		Time: time.Unix(1700000000, 0), Kind: KindExec,
		Process: Process{
			PID: 42, Exe: "/tmp/evil\nFAKE LOG LINE", Comm: "x\x1b]0;pwned\x07",
			Args: []string{"sh", "-c", "echo \"hi\"\n", "\xff\xfe", strings.Repeat("z", 70000)},
			Cwd:  "/tmp/\u202etxt.exe",
		},
	}
	s := e.String()
	if strings.ContainsAny(s, "\n\r\x1b\x07") || !utf8.ValidString(s) || strings.Contains(s, "\u202e") {
		t.Fatalf("unsafe rendering: %q", s)
	}
	if len(s) > 4096 {
		t.Fatalf("rendering of a 70 KB argument is %d bytes", len(s))
	}
	for _, want := range []string{`exe="/tmp/evil\nFAKE LOG LINE"`, `\xff\xfe`, `"echo \"hi\"\n"`, `\u202e`} {
		if !strings.Contains(s, want) {
			t.Errorf("rendering lacks %q: %s", want, s)
		}
	}
}

func TestEventJSONOmitsOtherKinds(t *testing.T) {
	e := &Event{Kind: KindConnect, Syscall: "connect", Ret: 0,
		Net: Net{Family: AFInet, Protocol: "tcp", DstAddr: "127.0.0.1", DstPort: 80}}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, absent := range []string{`"file"`, `"ptrace"`, `"container"`, `"mount"`} {
		if strings.Contains(s, absent) {
			t.Errorf("JSON has %s: %s", absent, s)
		}
	}
	if !strings.Contains(s, `"dstAddr":"127.0.0.1"`) {
		t.Errorf("JSON lacks net: %s", s)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil || back.Net != e.Net {
		t.Fatalf("round trip: %v %+v", err, back.Net)
	}
}

func TestKinds(t *testing.T) {
	seen := map[Kind]bool{}
	for _, k := range Kinds {
		if seen[k] {
			t.Fatalf("duplicate kind %s", k)
		}
		seen[k] = true
		got, err := ParseKind(strings.ToUpper(string(k)))
		if err != nil || got != k {
			t.Fatalf("ParseKind(%s) = %v, %v", k, got, err)
		}
	}
	if _, err := ParseKind("exec\nx"); err == nil || strings.Contains(err.Error(), "\n") {
		t.Fatalf("ParseKind of garbage: %v", err)
	}
}

func TestNames(t *testing.T) {
	if got := CapNames(1<<CapSysAdmin | 1<<CapNetRaw | 1<<63); strings.Join(got, ",") != "CAP_NET_RAW,CAP_SYS_ADMIN,CAP_63" {
		t.Errorf("CapNames = %v", got)
	}
	if got := NSTypes(CloneNewNS | CloneNewNet); strings.Join(got, ",") != "mnt,net" {
		t.Errorf("NSTypes = %v", got)
	}
	if PtraceRequestName(PtraceAttach) != "PTRACE_ATTACH" || BPFCmdName(BPFProgLoad) != "BPF_PROG_LOAD" || BPFCmdName(-1) != "" {
		t.Error("request names")
	}
	p := Process{CapEffective: 1 << CapSysAdmin}
	if !p.HasCap(CapSysAdmin) || p.HasCap(CapNetRaw) || p.HasCap(99) {
		t.Error("HasCap")
	}
}

func TestModelConversions(t *testing.T) {
	e := &Event{
		Time: time.Unix(1, 0), Kind: KindExec,
		Process:   Process{PID: 7, PPID: 1, Exe: "/tmp/x\xff", Args: []string{"a\x00b", strings.Repeat("y", 70000)}, ParentExe: "/bin/bash"},
		Container: Container{ID: "abc", Image: "busybox", Labels: map[string]string{"app": "web"}},
	}
	me := &model.Event{ID: "1", Time: e.Time, Source: model.SourceRuntime, Action: model.ActionLog,
		Process: e.ModelProcess(), Container: e.ModelContainer(), File: e.ModelFile(), Network: e.ModelNetwork()}
	if err := me.Validate(); err != nil {
		t.Fatalf("model event from hostile values: %v", err)
	}
	if me.Process.Exe != `/tmp/x\xff` || me.Process.Args[0] != `a\x00b` || me.Process.Ancestors[0] != "/bin/bash" || me.Network != nil {
		t.Errorf("%+v", me.Process)
	}
	if (&Event{Kind: KindOpen}).ModelContainer() != nil {
		t.Error("host event has a container")
	}
	c := &Event{Kind: KindConnect, Net: Net{Protocol: "tcp", DstAddr: "10.0.0.1", DstPort: 443}}
	if n := c.ModelNetwork(); n == nil || n.DstPort != 443 || c.ModelFile() != nil {
		t.Errorf("%+v", n)
	}
	ch := &Event{Kind: KindChmod, File: File{Path: "/usr/bin/x", Mode: 0o4755}}
	if f := ch.ModelFile(); f.Mode != "4755" {
		t.Errorf("%+v", f)
	}
}
