//go:build !isal || !cgo

package inflate

import "io"

func newFast(io.Reader) (io.ReadCloser, bool, error) { return nil, false, nil }

func fastAvailable() bool { return false }
