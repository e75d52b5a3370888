// Package hostile is mamori's hostile-input suite: it builds malicious and
// broken images at test time (path traversal, links out of the tree, gzip and
// zip bombs, truncated layers, garbage manifests and package databases,
// device entries, terminal escapes in file names, 200k-file layers, 1 GiB
// files) and drives the real scan path over each — scan.Build, image.OpenFile
// and Scanner.ScanImage in process, or the built mamori binary when the
// property is one of the process (exit code, peak RSS, files written).
//
// Every case must end in a clear error or a bounded scan: never a crash, a
// hang (each case runs under a deadline), or a write outside the cache and
// temporary directories (each scan runs with TMPDIR, HOME and the cache in
// fresh directories, from a working directory inside a sentinel tree that a
// path traversal would write into; all are checked afterwards).
//
// The package has no non-test code. The slow cases (gzip bomb, 1 GiB file,
// 200k files) are skipped in -short mode unless MAMORI_TEST_SLOW=1.
package hostile
