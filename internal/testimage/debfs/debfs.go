// Package debfs stages a Debian root file system from packages installed on
// this machine: their files, their dpkg status paragraphs and their
// md5sums, exactly as dpkg left them. Tests and bench/ scan it as a real
// distribution image without a network or a Docker engine (issue 14:
// secrets in distribution-owned files).
package debfs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Host is the dpkg database of the machine.
const Host = "/var/lib/dpkg"

// ErrNotInstalled: a package asked for is not installed here.
var ErrNotInstalled = errors.New("debfs: package not installed")

// Stage copies into dst the regular files of pkgs (as their .list files
// name them), a status file with exactly their paragraphs, their md5sums
// files and /etc/os-release. It returns the staged paths of regular files.
func Stage(dst string, pkgs []string) ([]string, error) {
	status, err := os.ReadFile(filepath.Join(Host, "status"))
	if err != nil {
		return nil, fmt.Errorf("read dpkg status: %w", err)
	}
	var paras bytes.Buffer
	var files []string
	for _, pkg := range pkgs {
		para, arch, ok := paragraph(status, pkg)
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrNotInstalled, pkg)
		}
		paras.WriteString(para + "\n\n")
		base := pkg
		if _, err := os.Stat(filepath.Join(Host, "info", pkg+".list")); err != nil && arch != "" {
			base = pkg + ":" + arch
		}
		list, err := os.ReadFile(filepath.Join(Host, "info", base+".list"))
		if err != nil {
			return nil, fmt.Errorf("file list of %s: %w", pkg, err)
		}
		for _, p := range strings.Split(string(list), "\n") {
			if p == "" || p == "/." {
				continue
			}
			st, err := os.Lstat(p)
			if err != nil || !st.Mode().IsRegular() {
				continue // directories, symlinks, diverted or removed files
			}
			if err := copyFile(p, filepath.Join(dst, p), st.Mode().Perm()); err != nil {
				return nil, err
			}
			files = append(files, strings.TrimPrefix(p, "/"))
		}
		if sums, err := os.ReadFile(filepath.Join(Host, "info", base+".md5sums")); err == nil {
			if err := writeFile(filepath.Join(dst, "var/lib/dpkg/info", base+".md5sums"), sums); err != nil {
				return nil, err
			}
		}
	}
	if err := writeFile(filepath.Join(dst, "var/lib/dpkg/status"), paras.Bytes()); err != nil {
		return nil, err
	}
	if err := copyFile("/etc/os-release", filepath.Join(dst, "etc/os-release"), 0o644); err != nil {
		if err := copyFile("/usr/lib/os-release", filepath.Join(dst, "etc/os-release"), 0o644); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// paragraph returns the installed paragraph of pkg and its architecture.
func paragraph(status []byte, pkg string) (para, arch string, ok bool) {
	for _, p := range strings.Split(string(status), "\n\n") {
		sc := bufio.NewScanner(strings.NewReader(p))
		sc.Buffer(nil, 1<<20)
		var name, st string
		for sc.Scan() {
			k, v, _ := strings.Cut(sc.Text(), ":")
			switch k {
			case "Package":
				name = strings.TrimSpace(v)
			case "Status":
				st = strings.TrimSpace(v)
			case "Architecture":
				arch = strings.TrimSpace(v)
			}
		}
		if name == pkg && strings.HasSuffix(st, " installed") {
			return strings.TrimSpace(p), arch, true
		}
		arch = ""
	}
	return "", "", false
}

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm|0o200)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

func writeFile(p string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}
