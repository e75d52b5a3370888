package hostile

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"mamori/internal/model"
)

// eicarBytes builds the EICAR anti-virus test file from pieces, so that the
// repository and the test binary never hold it literally.
func eicarBytes() []byte {
	return []byte(strings.Join([]string{`X5O!P%@AP[4\PZX54(P^)7CC)7}$`, "EICAR-STANDARD-", "ANTIVIRUS-TEST-", "FILE!$H+H*"}, ""))
}

// awsKeyLine is a .env line holding an AWS access key ID of the real format.
func awsKeyLine() string { return "AWS_ACCESS_KEY_ID=" + "AK" + "IA" + "QZ7RT2MXW4YB6NPK" + "\n" }

// Issue 14: one layer writes the same package manifest, the same secret
// file and the same EICAR file many times. The last entry for a path is
// the file (`tar -x`, every container runtime), so the scan reports exactly
// what extraction leaves: one package of the last version, and a secret or
// malware finding only when the last copy has one.
func TestRepeatedEntriesInOneLayer(t *testing.T) {
	const repeats = 10000
	const (
		manifest = "app/node_modules/dup/package.json"
		envFile  = "app/.env"
		virus    = "app/eicar.com"
		shadow   = "etc/shadow"
	)
	// An account with an empty password (MSC-IMG-011) and the same account locked.
	badShadow, goodShadow := "root::19700:0:99999:7:::\n", "root:*:19700:0:99999:7:::\n"
	pkgJSON := func(v string) string { return fmt.Sprintf(`{"name":"dup","version":"%s","license":"MIT"}`, v) }
	build := func(lastBad bool) []entry {
		var es []entry
		for i := 0; i < repeats; i++ {
			bad := !lastBad // the many copies are the opposite of the last one
			es = append(es, reg(manifest, pkgJSON(fmt.Sprintf("1.0.%d", i))))
			if bad {
				es = append(es, reg(envFile, awsKeyLine()), regBytes(virus, eicarBytes()), reg(shadow, badShadow))
			} else {
				es = append(es, reg(envFile, "LOG_LEVEL=info\n"), reg(virus, "just text\n"), reg(shadow, goodShadow))
			}
		}
		last := []entry{reg(manifest, pkgJSON("9.9.9"))}
		if lastBad {
			last = append(last, reg(envFile, awsKeyLine()), regBytes(virus, eicarBytes()), reg(shadow, badShadow))
		} else {
			last = append(last, reg(envFile, "LOG_LEVEL=info\n"), reg(virus, "just text\n"), reg(shadow, goodShadow))
		}
		return append(es, last...)
	}
	for _, lastBad := range []bool{false, true} {
		t.Run(fmt.Sprintf("lastCopyBad=%v", lastBad), func(t *testing.T) {
			e := newEnv(t)
			archive := filepath.Join(e.root, "repeat.tar")
			l := writeLayer(t, e.root, gzipped, append(goodEntries(), build(lastBad)...)...)
			writeArchive(t, archive, archiveSpec{layers: []layer{l}})
			r := runMamori(t, e, fastDeadline, "image", "--input", archive, "--scanners", "vuln,secret,malware,misconfig", "--format", "json", "--no-cache")
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, tail(r.stderr))
			}
			res := decodeResult(t, r.stdout)
			t.Logf("%d repeats of 4 files: wall %s, peak RSS %d MiB", repeats, r.wall.Round(1e6), r.maxRSS>>20)
			var dups []model.Package
			for _, p := range res.Inventory.Packages {
				if p.Name == "dup" {
					dups = append(dups, p)
				}
			}
			if len(dups) != 1 || dups[0].Version != "9.9.9" {
				t.Errorf("packages named dup: %+v, want one of version 9.9.9", dups)
			}
			count := func(kind model.FindingKind, path string) int {
				n := 0
				for _, f := range res.Findings {
					if f.Kind == kind && f.Location.Path == path {
						n++
					}
				}
				return n
			}
			want := 0
			if lastBad {
				want = 1
			}
			if n := count(model.KindSecret, envFile); n != want {
				t.Errorf("secret findings in %s: %d, want %d", envFile, n, want)
			}
			if n := count(model.KindMalware, virus); n != want {
				t.Errorf("malware findings in %s: %d, want %d", virus, n, want)
			}
			if n := count(model.KindMisconfig, shadow); n != want {
				t.Errorf("misconfiguration findings in %s: %d, want %d", shadow, n, want)
			}
			mustPackage(t, res, "hostile-good", "goodpy")
			if r.maxRSS > 200<<20 {
				t.Errorf("peak RSS %d MiB for %d repeats: memory is not bounded", r.maxRSS>>20, repeats)
			}
		})
	}
}
