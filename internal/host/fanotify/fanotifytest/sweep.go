package fanotifytest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// sourcePrefix names the mounts the kit makes: "mamori-test-<pid>", so a
// later run can tell the mounts of a test process that died (a panic, a
// kill: no cleanup ran) and remove them.
const sourcePrefix = "mamori-test-"

func source() string { return sourcePrefix + strconv.Itoa(os.Getpid()) }

var sweepOnce = syncOnceReset()

// syncOnceReset returns a fresh sync.Once (tests sweep twice).
func syncOnceReset() *sync.Once { return new(sync.Once) }

// sweepStale unmounts the kit's mounts whose test process is gone.
func sweepStale(t testing.TB) {
	sweepOnce.Do(func() {
		for _, m := range staleMounts() {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				t.Logf("fanotifytest: unmount stale %s: %v", m, err)
			}
		}
	})
}

// staleMounts lists mount points of the kit's mounts (from
// /proc/self/mountinfo) whose owner PID no longer runs.
func staleMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close() // read-only
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw": the
		// source follows the file-system type after " - ".
		_, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields := strings.Fields(post)
		if len(fields) < 2 || !strings.HasPrefix(fields[1], sourcePrefix) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(fields[1], sourcePrefix))
		if err != nil || pid == os.Getpid() || alive(pid) {
			continue
		}
		pre := strings.Fields(sc.Text())
		if len(pre) > 4 {
			out = append(out, unescape(pre[4]))
		}
	}
	return out
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
