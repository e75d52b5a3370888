//go:build !linux

package sensor

import "fmt"

func startFallback(o *options, c *counters) (backend, error) {
	return nil, fmt.Errorf("%w: the fallback sensor needs Linux (CN_PROC, fanotify)", ErrNotSupported)
}
