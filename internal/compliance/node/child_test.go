package node

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// envChild makes the test binary the child process of InventoryInChild
// (the CLI's `compliance collect node --inventory-only --low-priority`).
const envChild = "MAMORI_NODE_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(envChild); mode != "" {
		os.Exit(child(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// child: "inventory" prints the inventory of --root as JSON after
// lowering its priority; "garbage" prints what is not JSON; "fail" exits 3.
func child(mode string, args []string) int {
	switch mode {
	case "garbage":
		fmt.Println("{not json")
		return 0
	case "fail":
		fmt.Fprintln(os.Stderr, "walk failed: no such root")
		return 3
	}
	fs := flag.NewFlagSet("child", flag.ContinueOnError)
	root := fs.String("root", "", "")
	skip := fs.String("skip-dirs", "", "")
	extra := fs.String("inventory-dirs", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := LowerPriority(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var ex []string
	if *extra != "" {
		ex = strings.Split(*extra, ",")
	}
	inv, err := HostInventory(context.Background(), *root, strings.Split(*skip, ","), ex, os.TempDir(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Every thread's nice value, for the parent to check (a field of
	// the inventory would not survive Validate; stderr carries it).
	fmt.Fprintln(os.Stderr, "nice:", threadNices())
	if err := json.NewEncoder(os.Stdout).Encode(inv); err != nil {
		return 1
	}
	return 0
}

// threadNices lists the nice value (field 19 of stat) of every thread.
func threadNices() string {
	ents, _ := os.ReadDir("/proc/self/task")
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 16 {
			out = append(out, f[16])
		}
	}
	return strings.Join(out, ",")
}

// TestInventoryInChild: the inventory comes from the child process, which
// ran at nice 19; a child that fails or prints garbage is an error naming
// it.
func TestInventoryInChild(t *testing.T) {
	root := t.TempDir()
	status := "Package: tar\nStatus: install ok installed\nVersion: 1.34+dfsg-1.2\nArchitecture: amd64\n\n" +
		"Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13.dfsg-1\nArchitecture: amd64\nSource: zlib\n\n"
	for name, body := range map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n", "var/lib/dpkg/status": status} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(envChild, "inventory")
	inv, err := InventoryInChild(exe)(context.Background(), root, []string{"proc"}, nil, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range inv.Packages {
		names = append(names, p.Name+" "+p.Version)
	}
	if len(inv.Packages) != 2 || !strings.Contains(strings.Join(names, ","), "tar 1.34+dfsg-1.2") {
		t.Fatalf("child's inventory: %v", names)
	}
	// The nice values, read in the child.
	var errb tailBuffer
	cmd := execChild(t, exe, root, &errb)
	if err := cmd.Run(); err != nil {
		t.Fatalf("child: %v %s", err, errb.String())
	}
	line := errb.String()
	i := strings.Index(line, "nice: ")
	if i < 0 {
		t.Fatalf("child printed no nice values: %q", line)
	}
	for _, n := range strings.Split(strings.TrimSpace(line[i+len("nice: "):]), ",") {
		if v, err := strconv.Atoi(n); err != nil || v != lowNice {
			t.Errorf("a thread of the child runs at nice %q, want %d (all: %s)", n, lowNice, line)
		}
	}

	for mode, want := range map[string]string{"garbage": "its output", "fail": "no such root"} {
		t.Setenv(envChild, mode)
		if _, err := InventoryInChild(exe)(context.Background(), root, nil, nil, ""); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("child %s: %v, want an error with %q", mode, err, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t.Setenv(envChild, "inventory")
	if _, err := InventoryInChild(exe)(ctx, root, nil, nil, ""); err == nil {
		t.Error("a cancelled walk returned an inventory")
	}
}

func execChild(t *testing.T, exe, root string, stderr *tailBuffer) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(exe, "--root", root, "--skip-dirs=proc")
	cmd.Stderr = stderr
	return cmd
}
