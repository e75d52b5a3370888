//go:build !linux

package policy

import "testing"

func reportCPU(_ *testing.B, loop func()) { loop() }
