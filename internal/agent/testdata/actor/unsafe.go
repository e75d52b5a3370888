package main

import "unsafe"

// unsafePtr returns a NUL-terminated copy of s for a system call.
func unsafePtr(s string) unsafe.Pointer {
	b := append([]byte(s), 0)
	return unsafe.Pointer(&b[0])
}
