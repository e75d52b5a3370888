// Package e2e holds the end-to-end test of "in use at run time" (issue
// 15): real containerd containers (internal/testctr) of images built in
// the test from the machine's own Debian 12 packages, the node agent with
// the eBPF sensor, and a real mamori server that matched the images
// against the real OSV records in testdata. It runs with
// MAMORI_TEST_RUNTIME=1 (root) in the serial privileged step of
// scripts/test.sh. The package has no code of its own.
package e2e
