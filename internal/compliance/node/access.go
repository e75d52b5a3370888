package node

import (
	"bufio"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"

	"mamori/internal/compliance/posture"
)

// maxIncludes bounds the sudoers.d and sshd_config.d files read.
const maxIncludes = 200

// readSudoers reads /etc/sudoers and the files of /etc/sudoers.d (as sudo
// does: names with a '.' or ending in '~' are skipped) and returns every
// user specification, each marked allowed or not by the baseline.
func readSudoers(root string, allowed []string, warn func(string, ...any)) []posture.SudoRule {
	files := []string{"/etc/sudoers"}
	names := readDir(root, "/etc/sudoers.d")
	sort.Strings(names)
	for _, n := range names {
		if strings.Contains(n, ".") || strings.HasSuffix(n, "~") {
			continue
		}
		if len(files) > maxIncludes {
			warn("sudoers: more than %d files, the rest not read", maxIncludes)
			break
		}
		files = append(files, "/etc/sudoers.d/"+n)
	}
	var out []posture.SudoRule
	for _, f := range files {
		b, _, err := readFile(root, f)
		if err != nil {
			if f == "/etc/sudoers" && !strings.Contains(err.Error(), "no such file") {
				warn("sudoers: %v", err)
			}
			continue
		}
		out = append(out, parseSudoers(f, string(b), allowed)...)
	}
	return out
}

// parseSudoers returns the user specifications of one sudoers file.
// Defaults, aliases and include directives are not grants; continuation
// lines (a trailing backslash) are joined.
func parseSudoers(file, text string, allowed []string) []posture.SudoRule {
	var out []posture.SudoRule
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), maxFile)
	lineNo, start := 0, 0
	var cur strings.Builder
	for sc.Scan() {
		lineNo++
		l := sc.Text()
		if cur.Len() == 0 {
			start = lineNo
		}
		if strings.HasSuffix(l, "\\") {
			cur.WriteString(strings.TrimSuffix(l, "\\") + " ")
			continue
		}
		cur.WriteString(l)
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if i := strings.Index(line, "#"); i >= 0 && !strings.HasPrefix(line, "#include") {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" || strings.HasPrefix(line, "#include") || strings.HasPrefix(line, "@include") ||
			strings.HasPrefix(line, "Defaults") {
			continue
		}
		first := strings.Fields(line)[0]
		if slices.Contains([]string{"User_Alias", "Runas_Alias", "Host_Alias", "Cmnd_Alias", "Cmd_Alias"}, first) {
			continue
		}
		who, spec, ok := splitSpec(line)
		if !ok {
			continue
		}
		for _, w := range strings.Split(who, ",") {
			w = strings.TrimSpace(w)
			if w == "" {
				continue
			}
			out = append(out, posture.SudoRule{File: file, Line: start, Who: w, Spec: spec,
				NoPasswd: strings.Contains(spec, "NOPASSWD:"), Allowed: slices.Contains(allowed, w)})
		}
	}
	return out
}

// splitSpec splits "who host=(runas) cmds" at the first host list: the
// user list is everything before the last blank before the first '='.
func splitSpec(line string) (string, string, bool) {
	eq := strings.Index(line, "=")
	if eq < 0 {
		return "", "", false
	}
	head := strings.TrimSpace(line[:eq])
	sp := strings.LastIndexAny(head, " \t")
	if sp < 0 {
		return "", "", false
	}
	who := strings.TrimSpace(head[:sp])
	return who, strings.TrimSpace(line[sp+1:]), who != ""
}

// sshd settings checked, with their secure value and OpenSSH's default.
var sshdChecks = []struct {
	id, key, title, want, def string
}{
	{"CIS-Linux-5.2.7", "permitrootlogin", "SSH root login disabled (PermitRootLogin no or prohibit-password)", "no|prohibit-password|without-password", "prohibit-password"},
	{"CIS-Linux-5.2.8", "passwordauthentication", "SSH password authentication disabled", "no", "yes"},
	{"CIS-Linux-5.2.9", "permitemptypasswords", "SSH empty passwords refused", "no", "no"},
}

// readSSHD reads sshd_config and its Include'd files (first value wins,
// as sshd reads them; Match blocks are not evaluated). No sshd_config: no
// items (no SSH daemon configured).
func readSSHD(root string, warn func(string, ...any)) []posture.Item {
	seen := map[string]string{}
	src := map[string]string{}
	var read func(p string, depth int)
	read = func(p string, depth int) {
		b, _, err := readFile(root, p)
		if err != nil {
			if depth == 0 && !strings.Contains(err.Error(), "no such file") {
				warn("sshd: %v", err)
			}
			return
		}
		inMatch := false
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || strings.HasPrefix(f[0], "#") {
				continue
			}
			key := strings.ToLower(f[0])
			switch {
			case key == "match":
				inMatch = true
			case key == "include" && depth < 3:
				for _, pat := range f[1:] {
					if !strings.HasPrefix(pat, "/") {
						pat = "/etc/ssh/" + pat
					}
					dir, glob := path.Split(pat)
					names := readDir(root, dir)
					sort.Strings(names)
					for i, n := range names {
						if ok, _ := path.Match(glob, n); ok && i < maxIncludes {
							read(dir+n, depth+1)
						}
					}
				}
			case !inMatch:
				if _, ok := seen[key]; !ok {
					seen[key] = strings.ToLower(f[1])
					src[key] = p
				}
			}
		}
	}
	if _, _, err := readFile(root, "/etc/ssh/sshd_config"); err != nil {
		return nil
	}
	read("/etc/ssh/sshd_config", 0)
	var out []posture.Item
	for _, c := range sshdChecks {
		v, ok := seen[c.key]
		source := src[c.key]
		if !ok {
			v, source = c.def, "OpenSSH default"
		}
		st := posture.Fail
		if slices.Contains(strings.Split(c.want, "|"), v) {
			st = posture.Pass
		}
		out = append(out, posture.Item{ID: c.id, Title: c.title, Status: st, Actual: fmt.Sprintf("%s %s", c.key, v),
			Source: source, Controls: []string{"4.5.4"}})
	}
	return out
}
