package integrity

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// unitDirs are the systemd unit directories read, highest precedence
// first (systemd.unit(5); /run is transient and not recorded).
var unitDirs = [...]string{"/etc/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// ServiceCollector records the systemd units that are enabled (linked
// from a .wants, .requires or .upholds directory) or masked (linked to
// /dev/null in /etc). Attributes: wantedBy (sorted "<dir>/<target>.wants"
// entries), masked, unitFile (the file systemd would load), sha256 of it,
// execStart (its first ExecStart=), dropIns (sorted *.d/*.conf names).
type ServiceCollector struct{}

var _ Collector = ServiceCollector{}

func (ServiceCollector) Name() string { return "services" }
func (ServiceCollector) Kind() Kind   { return KindService }
func (ServiceCollector) Triggers() []string {
	return []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}
}
func (ServiceCollector) Volatile() []string { return nil }

func (ServiceCollector) Collect(ctx context.Context, env Env) ([]Object, error) {
	wanted := map[string][]string{}
	masked := map[string]bool{}
	real := map[string]bool{} // /lib is /usr/lib on merged-/usr systems: read once
	for _, d := range unitDirs {
		if r, err := filepath.EvalSymlinks(env.Path(d)); err == nil {
			if real[r] {
				continue
			}
			real[r] = true
		}
		ents, err := os.ReadDir(env.Path(d))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			n := e.Name()
			switch {
			case e.IsDir() && (strings.HasSuffix(n, ".wants") || strings.HasSuffix(n, ".requires") || strings.HasSuffix(n, ".upholds")):
				links, err := os.ReadDir(env.Path(d + "/" + n))
				if err != nil {
					continue
				}
				for _, l := range links {
					if len(wanted) >= maxObjects {
						break
					}
					wanted[l.Name()] = append(wanted[l.Name()], d+"/"+n)
				}
			case d == unitDirs[0] && e.Type()&os.ModeSymlink != 0:
				if t, err := os.Readlink(env.Path(d + "/" + n)); err == nil && t == "/dev/null" {
					masked[n] = true
				}
			}
		}
	}
	units := make([]string, 0, len(wanted)+len(masked))
	for u := range wanted {
		units = append(units, u)
	}
	for u := range masked {
		if _, ok := wanted[u]; !ok {
			units = append(units, u)
		}
	}
	slices.Sort(units)
	out := make([]Object, 0, len(units))
	for _, u := range units {
		w := wanted[u]
		slices.Sort(w)
		a := map[string]string{"wantedBy": truncate(SafeText(strings.Join(w, " ")))}
		if masked[u] {
			a["masked"] = "true"
		} else if f := unitFile(env, u); f != "" {
			a["unitFile"] = SafeText(f)
			if b, err := readSystemFile(env.Path(f)); err == nil && b != nil {
				sum := sha256.Sum256(b)
				a["sha256"] = hex.EncodeToString(sum[:])
				if x := firstExecStart(b); x != "" {
					a["execStart"] = truncate(SafeText(x))
				}
			}
		} else {
			a["unitFile"] = "(missing)"
		}
		if d := dropIns(env, u); d != "" {
			a["dropIns"] = truncate(SafeText(d))
		}
		out = append(out, Object{Kind: KindService, Key: SafeText(u), Attrs: a})
	}
	return out, nil
}

// unitFile finds the file systemd loads for unit u: the first unit
// directory that has it (following symlinks, as systemd does), or the
// template of an instance ("getty@tty1.service" -> "getty@.service").
func unitFile(env Env, u string) string {
	names := []string{u}
	if at := strings.IndexByte(u, '@'); at > 0 {
		if dot := strings.LastIndexByte(u, '.'); dot > at {
			names = append(names, u[:at+1]+u[dot:])
		}
	}
	for _, n := range names {
		for _, d := range unitDirs {
			p := d + "/" + n
			st, err := os.Stat(env.Path(p))
			if err == nil && st.Mode().IsRegular() {
				if t, err := os.Readlink(env.Path(p)); err == nil && path.IsAbs(t) {
					return t
				}
				return p
			}
		}
	}
	return ""
}

func firstExecStart(b []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok && v != "" {
			return v
		}
	}
	return ""
}

func dropIns(env Env, u string) string {
	var out []string
	for _, d := range unitDirs {
		ents, err := os.ReadDir(env.Path(d + "/" + u + ".d"))
		if err != nil {
			continue
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".conf") {
				out = append(out, fmt.Sprintf("%s/%s.d/%s", d, u, e.Name()))
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}
