//go:build !(linux && amd64)

package sensor

import "fmt"

// The committed BPF object is built for x86-64 (syscalls.go has its
// system call numbers); other platforms run the fallback.
func startEBPF(o *options, c *counters) (backend, error) {
	return nil, fmt.Errorf("%w: the eBPF sensor is built for linux/amd64", ErrNotSupported)
}
