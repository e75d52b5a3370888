package misconfig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"mamori/internal/analyzer"
	"mamori/internal/model"
)

// Check IDs of this file.
const (
	ImgEmptyPassword    = "MSC-IMG-011"
	ImgDuplicateAccount = "MSC-IMG-012"
)

// accountChecks are the account-database checks of this file: metadata here, logic below, tests in accounts_test.go.
func accountChecks() []CheckInfo {
	return []CheckInfo{
		img(ImgEmptyPassword, "Account with an empty password", high,
			"An account's password field is empty in /etc/shadow (or BSD /etc/master.passwd), or in /etc/passwd itself: su and login accept it with no password (pam_unix nullok, Debian's default). Locked fields (!, !!, *) are not empty. Alpine images before 3.9.2 shipped root this way (CVE-2019-5021).",
			"Lock the account (passwd -l NAME, or usermod -p '!' NAME), or remove it; set a password only if someone must log in.", nistImageConfig, "CIS-Docker-4.1").withPeers("DKL-LI-0001"),
		img(ImgDuplicateAccount, "Duplicate user or group ID", med,
			"/etc/passwd gives one UID to several user names, or /etc/group one GID to several group names, or a name is defined twice: file ownership and audit trails cannot tell the accounts apart, and a second UID 0 name is a hidden root account.",
			"Give every account and group its own ID and remove the duplicates (userdel, groupdel or edit the files in the Dockerfile).", nistImageConfig).withPeers("DKL-LI-0002"),
	}
}

const (
	// MaxAccountFileSize caps the bytes read from one account file. An
	// /etc/passwd line is ~50-100 bytes, so 4 MiB is some 40,000 accounts —
	// far beyond any image (directory-backed accounts are not in files).
	// Above the cap the first MaxAccountFileSize bytes are checked and the
	// rest is reported as not read.
	MaxAccountFileSize = 4 << 20
	// maxAccountLine caps one line: /etc/group lines list members and can
	// be long, but not 64 KiB long; longer lines are skipped and counted.
	maxAccountLine = 64 << 10
	// maxAccountFindings caps the findings of one file, so that a hostile
	// file of a million empty-password lines costs a bounded report.
	maxAccountFindings = 100
	// maxNameEvidence caps an account name quoted in evidence.
	maxNameEvidence = 64
	// maxAccountFileContent: above this size AccountsAnalyzer asks for
	// metadata only, so that the walk does not read (or spill to disk) a
	// hostile multi-gigabyte "account file" just for its first 4 MiB; the
	// file is reported as not checked.
	maxAccountFileContent = 64 << 20
	// accountsVersion is bumped when AccountsAnalyzer's output can change.
	accountsVersion = 1
)

// Account file kinds, from the file's base name.
const (
	acctNone = iota
	acctPasswd
	acctShadow // also BSD master.passwd: name:password:... like shadow(5)
	acctGroup
)

// accountFiles are the files AccountsAnalyzer reads (root-relative).
var accountFiles = map[string]int{
	"etc/passwd":        acctPasswd,
	"etc/shadow":        acctShadow,
	"etc/master.passwd": acctShadow,
	"etc/group":         acctGroup,
}

func accountKind(p string) int {
	switch path.Base(p) {
	case "passwd":
		return acctPasswd
	case "shadow", "master.passwd":
		return acctShadow
	case "group":
		return acctGroup
	}
	return acctNone
}

// acctLine is one parsed line of an account file.
type acctLine struct {
	line   int      // 1-based
	fields []string // colon-separated fields
}

// parseAccountLines splits an account file (passwd(5), shadow(5),
// group(5)) into lines of at least minFields colon-separated fields.
// Blank lines, comments and NIS compat entries ("+name", "-name") are
// ignored; lines that are too long, hold a NUL or invalid UTF-8 (binary
// content), or have too few fields are skipped and counted.
func parseAccountLines(b []byte, minFields int) (lines []acctLine, skipped int) {
	for n := 1; len(b) > 0; n++ {
		var ln []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			ln, b = b[:i], b[i+1:]
		} else {
			ln, b = b, nil
		}
		ln = bytes.TrimSuffix(ln, []byte{'\r'})
		if len(bytes.TrimSpace(ln)) == 0 || ln[0] == '#' || ln[0] == '+' || ln[0] == '-' {
			continue
		}
		if len(ln) > maxAccountLine || bytes.IndexByte(ln, 0) >= 0 || !utf8.Valid(ln) {
			skipped++
			continue
		}
		f := strings.Split(string(ln), ":")
		if len(f) < minFields || f[0] == "" {
			skipped++
			continue
		}
		lines = append(lines, acctLine{line: n, fields: f})
	}
	return lines, skipped
}

// CheckAccountFile checks one account file of an image's file system, read
// from p (root-relative: etc/passwd, etc/shadow, etc/master.passwd or
// etc/group; the base name selects the format):
//
//   - MSC-IMG-011: accounts with an empty password field in shadow(5) (or
//     master.passwd), or in passwd(5) itself — either means no password is
//     asked. Locked ("!", "!!", "*", "!hash") and shadowed ("x") fields are
//     not empty.
//   - MSC-IMG-012: a UID (passwd) or GID (group) used by more than one
//     name, or a name defined twice.
//
// At most MaxAccountFileSize bytes of content are checked. Malformed lines
// are skipped, counted in the returned error (wrapping ErrParse), and the
// findings of the well-formed lines are still returned.
func CheckAccountFile(p string, content []byte) ([]model.Finding, error) {
	var errs []error
	if len(content) > MaxAccountFileSize {
		errs = append(errs, fmt.Errorf("%w: %s is over %d bytes; only its first %d checked", ErrTooLarge, p, MaxAccountFileSize, MaxAccountFileSize))
		content = content[:MaxAccountFileSize]
		if i := bytes.LastIndexByte(content, '\n'); i >= 0 {
			content = content[:i+1] // drop the cut line
		}
	}
	kind := accountKind(p)
	var out []model.Finding
	var skipped int
	switch kind {
	case acctShadow:
		var lines []acctLine
		lines, skipped = parseAccountLines(content, 2)
		out = emptyPasswords(p, lines, "")
	case acctPasswd:
		var lines []acctLine
		lines, skipped = parseAccountLines(content, 3)
		out = emptyPasswords(p, lines, " in passwd (not shadowed)")
		out = append(out, duplicateIDs(p, lines, "UID", "user")...)
	case acctGroup:
		var lines []acctLine
		lines, skipped = parseAccountLines(content, 3)
		out = duplicateIDs(p, lines, "GID", "group")
	default:
		return nil, nil
	}
	if skipped > 0 {
		errs = append(errs, fmt.Errorf("%w: %s: %d malformed lines skipped", ErrParse, p, skipped))
	}
	if len(out) > maxAccountFindings {
		errs = append(errs, fmt.Errorf("%w: %s: more than %d findings, the rest omitted", ErrTooLarge, p, maxAccountFindings))
		out = out[:maxAccountFindings]
	}
	return out, errors.Join(errs...)
}

// emptyPasswords reports the lines whose second field (the password) is
// empty. In passwd(5), "x" and "*" mean "see shadow" / "no login"; in
// shadow(5), a leading "!" or "*" locks the password.
func emptyPasswords(p string, lines []acctLine, where string) []model.Finding {
	var out []model.Finding
	for _, l := range lines {
		if l.fields[1] != "" {
			continue
		}
		ev := "account " + evidenceName(l.fields[0]) + " has an empty password field" + where
		out = append(out, newFinding(ImgEmptyPassword, model.Location{Path: p, StartLine: l.line, EndLine: l.line}, ev))
		if len(out) > maxAccountFindings {
			break
		}
	}
	return out
}

// duplicateIDs reports IDs (field 3) shared by several names, and names
// (field 1) defined more than once. IDs compare as numbers when they parse
// ("0" and "00" are both root), as strings otherwise.
func duplicateIDs(p string, lines []acctLine, idName, what string) []model.Finding {
	type occ struct {
		name string
		line int
	}
	byID := map[string][]occ{}
	byName := map[string][]int{}
	var idOrder, nameOrder []string
	for _, l := range lines {
		id := strings.TrimSpace(l.fields[2])
		if n, err := strconv.ParseUint(id, 10, 32); err == nil {
			id = strconv.FormatUint(n, 10)
		}
		if _, ok := byID[id]; !ok {
			idOrder = append(idOrder, id)
		}
		byID[id] = append(byID[id], occ{l.fields[0], l.line})
		if _, ok := byName[l.fields[0]]; !ok {
			nameOrder = append(nameOrder, l.fields[0])
		}
		byName[l.fields[0]] = append(byName[l.fields[0]], l.line)
	}
	var out []model.Finding
	for _, id := range idOrder {
		occs := byID[id]
		names := map[string]bool{}
		var parts []string
		for _, o := range occs {
			if !names[o.name] {
				names[o.name] = true
				parts = append(parts, fmt.Sprintf("%s (line %d)", evidenceName(o.name), o.line))
			}
		}
		if len(names) < 2 {
			continue // one name listed twice: reported below as a duplicate name
		}
		line := occs[1].line
		out = append(out, newFinding(ImgDuplicateAccount, model.Location{Path: p, StartLine: line, EndLine: line},
			fmt.Sprintf("%s %s shared by %s", idName, evidenceName(id), strings.Join(parts, ", "))))
		if len(out) > maxAccountFindings {
			return out
		}
	}
	for _, name := range nameOrder {
		ls := byName[name]
		if len(ls) < 2 {
			continue
		}
		strs := make([]string, len(ls))
		for i, l := range ls {
			strs[i] = strconv.Itoa(l)
		}
		out = append(out, newFinding(ImgDuplicateAccount, model.Location{Path: p, StartLine: ls[1], EndLine: ls[1]},
			fmt.Sprintf("%s %s defined %d times (lines %s)", what, evidenceName(name), len(ls), strings.Join(strs, ", "))))
		if len(out) > maxAccountFindings {
			return out
		}
	}
	return out
}

// evidenceName makes a name from the file safe to print: non-printable
// runes (terminal escapes) become '?', and long names are cut.
func evidenceName(s string) string {
	if len(s) > maxNameEvidence {
		s = s[:maxNameEvidence] + "..."
	}
	return strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '?'
		}
		return r
	}, s)
}

// AccountsAnalyzer runs CheckAccountFile on etc/passwd, etc/shadow,
// etc/master.passwd and etc/group (dockle DKL-LI-0001, DKL-LI-0002).
//
// Every version of these files gets a result marked Present, so that an
// account file fixed by a later layer (the empty password locked, the
// duplicate removed) replaces the findings of its earlier version in the
// merge instead of leaving them behind.
type AccountsAnalyzer struct{}

var _ analyzer.Analyzer = AccountsAnalyzer{}

// NewAccountsAnalyzer returns the account file analyzer.
func NewAccountsAnalyzer() AccountsAnalyzer { return AccountsAnalyzer{} }

// Name implements analyzer.Analyzer.
func (AccountsAnalyzer) Name() string { return "misconfig-accounts" }

// Version implements analyzer.Analyzer.
func (AccountsAnalyzer) Version() int { return accountsVersion }

// Required implements analyzer.Analyzer: Content for the account files
// (Metadata only above maxAccountFileContent).
func (AccountsAnalyzer) Required(p string, info fs.FileInfo) analyzer.Need {
	if _, ok := accountFiles[p]; !ok || info == nil || !info.Mode().IsRegular() {
		return analyzer.Skip
	}
	if info.Size() > maxAccountFileContent {
		return analyzer.Metadata
	}
	return analyzer.Content
}

// Analyze implements analyzer.Analyzer. It reads at most
// MaxAccountFileSize+1 bytes.
func (AccountsAnalyzer) Analyze(_ context.Context, in analyzer.Input) (*analyzer.Result, error) {
	res := &analyzer.Result{Present: true}
	if in.Content == nil {
		if in.Info != nil && in.Info.Size() > maxAccountFileContent {
			return res, fmt.Errorf("%w: %s is %d bytes; not checked", ErrTooLarge, in.Path, in.Info.Size())
		}
		return res, nil
	}
	b, err := io.ReadAll(io.LimitReader(in.Content, MaxAccountFileSize+1))
	if err != nil {
		return res, fmt.Errorf("misconfig: read %s: %w", in.Path, err)
	}
	fs, err := CheckAccountFile(in.Path, b)
	res.Findings = fs
	return res, err
}
