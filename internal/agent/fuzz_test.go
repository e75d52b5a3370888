package agent

import (
	"testing"
)

// FuzzParseConfig: any bytes as a configuration file give a configuration
// that validates, or an error; never a panic or a hang.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte("node: n\nmodules: {runtime: {sensor: ebpf}}\n"))
	f.Add([]byte("spool: {fsync: always, maxBytes: 100, segmentBytes: 10}\n"))
	f.Add([]byte("&a [*a, *a, *a]\n"))
	f.Add([]byte("server: {url: https://x, caFile: /a, certSHA256: ab}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseConfig("fuzz.yaml", data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a configuration that does not validate: %v", err)
		}
	})
}
