package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"mamori/internal/model"
)

// InventoryFunc takes a node's host inventory (HostInventory's
// arguments but the logger; tempDir "" is os.TempDir()).
type InventoryFunc func(ctx context.Context, root string, skipDirs, extraDirs []string, tempDir string) (*model.Inventory, error)

// MaxInventoryJSON bounds the inventory a child process may print (a
// Debian host's is a few MiB).
const MaxInventoryJSON = 256 << 20

// InventoryInChild returns an InventoryFunc that runs exe with args, then
// --root, --skip-dirs and --inventory-dirs, and reads the inventory it
// prints as JSON on its stdout: `mamori compliance collect node
// --inventory-only --low-priority`, which lowers its CPU and I/O priority
// first (LowerPriority). The agent takes its host inventory this way: a
// niced, idle-I/O walk whose allocations never land in the agent's heap,
// which Go cannot give a goroutine of the agent itself (priority is per
// thread, and the walk's goroutines run on any thread, the sensor's
// readers among them).
func InventoryInChild(exe string, args ...string) InventoryFunc {
	return func(ctx context.Context, root string, skipDirs, extraDirs []string, tempDir string) (*model.Inventory, error) {
		a := append(append([]string{}, args...), "--root", root)
		if skipDirs != nil {
			a = append(a, "--skip-dirs="+strings.Join(skipDirs, ","))
		}
		if len(extraDirs) > 0 {
			a = append(a, "--inventory-dirs="+strings.Join(extraDirs, ","))
		}
		cmd := exec.CommandContext(ctx, exe, a...)
		cmd.WaitDelay = 5 * time.Second
		if tempDir != "" {
			cmd.Env = append(os.Environ(), "TMPDIR="+tempDir) // where large files spill
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, fmt.Errorf("host inventory process: %w", err)
		}
		var stderr tailBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("host inventory process %s: %w", exe, err)
		}
		var inv model.Inventory
		lr := &io.LimitedReader{R: stdout, N: MaxInventoryJSON + 1}
		derr := json.NewDecoder(lr).Decode(&inv)
		_, _ = io.Copy(io.Discard, lr) // let it finish writing
		werr := cmd.Wait()
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case werr != nil:
			return nil, fmt.Errorf("host inventory process: %w: %s", werr, stderr.String())
		case lr.N <= 0:
			return nil, fmt.Errorf("host inventory process: more than %d bytes of JSON", MaxInventoryJSON)
		case derr != nil:
			return nil, fmt.Errorf("host inventory process: its output: %w", derr)
		}
		if err := inv.Validate(); err != nil {
			return nil, fmt.Errorf("host inventory process: %w", err)
		}
		return &inv, nil
	}
}

// tailBuffer keeps the last 4 KiB written (a child's error output).
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(bytes.ToValidUTF8(t.b, nil))) }

// Background priorities of LowerPriority.
const (
	lowNice         = 19
	ioprioWhoThread = 1 // IOPRIO_WHO_PROCESS: a thread id on Linux
	ioprioClassIdle = 3
	ioprioClassBits = 13
)

// LowerPriority makes this process a background one: every thread's nice
// value becomes 19 and its I/O class idle (priority is per thread on
// Linux; threads started later inherit it from the thread that starts
// them, which has it by then: the thread list is read until it no longer
// grows). For a process that only walks a file system; never the agent.
func LowerPriority() error {
	done := map[int]bool{}
	for pass := 0; pass < 5; pass++ {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("lower priority: %w", err)
		}
		added := false
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil || done[tid] {
				continue
			}
			added = true
			done[tid] = true
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, lowNice); err != nil && err != unix.ESRCH {
				return fmt.Errorf("lower priority: nice of thread %d: %w", tid, err)
			}
			if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoThread, uintptr(tid), ioprioClassIdle<<ioprioClassBits); e != 0 && e != unix.ESRCH {
				return fmt.Errorf("lower priority: I/O class of thread %d: %w", tid, e)
			}
		}
		if !added {
			return nil
		}
	}
	return nil
}
