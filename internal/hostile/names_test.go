package hostile

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// Two GitHub personal access tokens (ghp_ + 36 base62), made up.
const (
	tokenA = "ghp_R7kQ2mZ9xWv4Lb8NcT1yHs5Jd3Fg6Pa0Ue2K"
	tokenB = "ghp_M3nB8vC1xZ7lK4jH9gF2dS6aQ0wE5rT8yU1i"
)

// hostileNameEntries are entries whose names (and package fields) carry
// invalid UTF-8, newlines and terminal escape sequences, plus device and
// fifo entries at paths catalogers read.
func hostileNameEntries() []entry {
	return append(goodEntries(),
		gnu(reg("app/\xff\xfe-invalid-utf8.env", "GITHUB_TOKEN="+tokenA+"\n")),
		reg("app/esc\x1b[31mred\x1b[0m\nnewline\x1b]0;pwned\x07.env", "GITHUB_TOKEN="+tokenB+"\n"),
		reg("app/"+strings.Repeat("\x1b[1m", 40)+"long.env", "GITHUB_TOKEN="+tokenA+"\n"),
		reg("usr/lib/node_modules/\x1b[2Jesc/package.json", `{"name":"\u001b[2Jesc-pkg\u001b]0;title\u0007","version":"1.0.0\u001b[0m"}`),
		gnu(reg("usr/lib/node_modules/bad\xff/package.json", "{\"name\":\"utf8-\xff-pkg\",\"version\":\"1.0.0\"}")),
		reg("usr/lib/node_modules/warn\x1b[5mblink\n/package.json", "{broken"),
		reg("var/lib/dpkg/status", "Package: esc\x1b[31mdeb\nStatus: install ok installed\nVersion: 1.0\x1b[0m\nArchitecture: amd64\n\n"),
		symlink("app/link\x1b[0m", "/etc/\x1b[31mshadow"),
		special("dev/sda", tar.TypeBlock, 8, 0),
		special("dev/null", tar.TypeChar, 1, 3),
		special("run/initctl", tar.TypeFifo, 0, 0),
		special("lib/apk/db/installed", tar.TypeChar, 1, 5),
		special("var/lib/rpm/rpmdb.sqlite", tar.TypeFifo, 0, 0),
		special("usr/lib/node_modules/dev/package.json", tar.TypeBlock, 8, 1),
		special("app/secrets.env", tar.TypeFifo, 0, 0),
	)
}

// Case 9: devices, fifos and hostile names. The scan completes, secrets in
// files with hostile names are found, JSON outputs stay valid, and no
// output carries a raw ESC byte.
func TestHostileNamesAndDevices(t *testing.T) {
	e := newEnv(t)
	l := writeLayer(t, t.TempDir(), gzipped, hostileNameEntries()...)
	archive := filepath.Join(t.TempDir(), "names.tar")
	writeArchive(t, archive, archiveSpec{layers: []layer{l}})

	o := scanImage(t, e, archive, fastDeadline, allScanners...)
	if o.err != nil {
		t.Fatalf("scan: %v", o.err)
	}
	mustPackage(t, o.res, "hostile-good", "goodpy")
	mustMatchAdvisory(t, o.res)
	// Secrets in the three hostile-named files.
	secretPaths := map[string]bool{}
	for _, f := range o.res.Findings {
		if f.Kind == "secret" {
			secretPaths[f.Location.Path] = true
		}
	}
	for _, p := range []string{"app/\xff\xfe-invalid-utf8.env", "app/esc\x1b[31mred\x1b[0m\nnewline\x1b]0;pwned\x07.env", "app/" + strings.Repeat("\x1b[1m", 40) + "long.env"} {
		if !secretPaths[p] {
			t.Errorf("no secret finding for %q (found in %q)", p, keys(secretPaths))
		}
	}
	b, err := json.Marshal(o.res)
	if err != nil {
		t.Fatalf("marshal result: %v", err)
	}
	if !json.Valid(b) || !utf8.Valid(b) {
		t.Error("result JSON invalid")
	}

	// The binary: every format, checked for raw escapes and JSON validity.
	for _, format := range []string{"table", "json", "cyclonedx", "spdx-json", "sarif", "junit"} {
		t.Run(format, func(t *testing.T) {
			r := runMamori(t, e, fastDeadline, "image", "--input", archive, "--scanners", "vuln,secret,malware,misconfig", "--format", format)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, tail(r.stderr))
			}
			if i := bytes.IndexByte(r.stdout, 0x1b); i >= 0 {
				t.Errorf("raw ESC in %s output at byte %d: %q", format, i, r.stdout[max(0, i-40):min(len(r.stdout), i+40)])
			}
			if i := bytes.IndexByte(r.stderr, 0x1b); i >= 0 {
				t.Errorf("raw ESC on stderr at byte %d: %q", i, r.stderr[max(0, i-40):min(len(r.stderr), i+40)])
			}
			if i := bytes.IndexByte(r.stdout, 0x07); i >= 0 {
				t.Errorf("raw BEL in %s output at byte %d", format, i)
			}
			switch format {
			case "json", "cyclonedx", "spdx-json", "sarif":
				if !json.Valid(r.stdout) {
					t.Errorf("%s output is not valid JSON: %s", format, tail(r.stdout))
				}
			}
			if format == "json" {
				res := decodeResult(t, r.stdout)
				mustPackage(t, res, "hostile-good")
				n := 0
				for _, f := range res.Findings {
					if f.Kind == "secret" {
						n++
					}
				}
				if n < 3 {
					t.Errorf("%d secret findings in JSON output, want 3", n)
				}
			}
			if format == "table" {
				// The hostile path is shown, neutralised.
				if !bytes.Contains(r.stdout, []byte("app/esc?[31mred?[0m?newline?]0;pwned?.env")) {
					t.Errorf("table does not show the neutralised path:\n%s", tail(r.stdout))
				}
			}
		})
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
