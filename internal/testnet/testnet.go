// Package testnet runs test code inside a network namespace: the one
// primitive the privileged tests share (a goroutine's OS thread switched
// into the namespace and back). Sockets opened inside stay in the
// namespace after Do returns and can be used from any goroutine.
package testnet

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs f on an OS thread switched into the network namespace at path
// (/run/netns/NAME, /proc/PID/ns/net) and puts the thread back in the
// caller's namespace afterwards. If switching back fails the thread stays
// locked, so the Go runtime retires it with its goroutine instead of
// reusing it in the wrong namespace.
func Do(path string, f func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer target.Close()
	return DoFile(target, f)
}

// DoFile is Do with the namespace already open.
func DoFile(target *os.File, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("own network namespace: %w", err)
			return
		}
		defer self.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", target.Name(), err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
