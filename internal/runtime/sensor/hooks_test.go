package sensor

import (
	"slices"
	"testing"

	"mamori/internal/runtime/event"
)

func TestIA32Enabled(t *testing.T) {
	on := []byte("CONFIG_X86_64=y\nCONFIG_IA32_EMULATION=y\n")
	off := []byte("CONFIG_X86_64=y\n# CONFIG_IA32_EMULATION is not set\n")
	defOff := []byte("CONFIG_IA32_EMULATION=y\nCONFIG_IA32_EMULATION_DEFAULT_DISABLED=y\n")
	for _, c := range []struct {
		name    string
		config  []byte
		cmdline string
		want    bool
	}{
		{"emulation built in", on, "quiet", true},
		{"no emulation", off, "", false},
		{"no emulation, the command line cannot enable it", off, "ia32_emulation=1", false},
		{"disabled by default", defOff, "", false},
		{"disabled by default, enabled at boot", defOff, "ro ia32_emulation=on quiet", true},
		{"disabled at boot", on, "ia32_emulation=0", false},
		{"disabled at boot, kstrtobool's n", on, "ia32_emulation=No", false},
		{"last one wins", on, "ia32_emulation=0 ia32_emulation=y", true},
		{"garbage value ignored", on, "ia32_emulation=maybe", true},
		{"unknown configuration counts as on", nil, "", true},
		{"unknown configuration, disabled at boot", nil, "ia32_emulation=false", false},
	} {
		if got := ia32Enabled(c.config, c.cmdline); got != c.want {
			t.Errorf("%s: ia32Enabled = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParseSyscallHooks(t *testing.T) {
	for in, want := range map[string]SyscallHooks{"": HooksAuto, "auto": HooksAuto, " RAW ": HooksRaw, "tracepoint": HooksTracepoint} {
		if got, err := ParseSyscallHooks(in); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	if _, err := ParseSyscallHooks("kprobe\x1b"); err == nil {
		t.Error("kprobe accepted")
	}
	if _, err := makeOptions([]Option{WithSyscallHooks("fentry")}); err == nil {
		t.Error("WithSyscallHooks(fentry) accepted")
	}
}

func TestSyscallTables(t *testing.T) {
	kinds := map[event.Kind]bool{event.KindConnect: true, event.KindLoad: true}
	tab := syscallTable(syscallsAMD64, kinds)
	// x86-64: 42 connect, 257 openat (load), 49 bind (not enabled), 0 read
	if tab[42] != uint8(sysConnect) || tab[257] != uint8(sysOpenat) || tab[49] != 0 || tab[0] != 0 {
		t.Errorf("native table: connect %d openat %d bind %d read %d", tab[42], tab[257], tab[49], tab[0])
	}
	ctab := syscallTable(syscalls386, kinds)
	if ctab[362] != uint8(sysConnect) || ctab[295] != uint8(sysOpenat) {
		t.Errorf("compat table: connect %d openat %d", ctab[362], ctab[295])
	}
	n := 0
	for _, v := range tab {
		if v != 0 {
			n++
		}
	}
	got := neededSyscalls(kinds)
	if want := []string{"connect", "creat", "open", "openat", "openat2"}; !slices.Equal(got, want) || n != len(want) {
		t.Errorf("needed calls %v (table has %d), want %v", got, n, want)
	}
	if got := kindSyscalls(event.KindModuleLoad); !slices.Equal(got, []string{"finit_module", "init_module"}) {
		t.Errorf("module_load calls %v", got)
	}
	// every kind a system call reports has a call, every call a name
	for _, k := range kindCodes[1:] {
		if k.IsProcess() || k == event.KindLoad {
			continue
		}
		if len(kindSyscalls(k)) == 0 {
			t.Errorf("kind %s has no system call", k)
		}
	}
	for _, id := range syscallsAMD64 {
		if sysNames[id] == "" || len(sysidKinds(id)) == 0 {
			t.Errorf("sysid %d: name %q kinds %v", id, sysNames[id], sysidKinds(id))
		}
	}
}
