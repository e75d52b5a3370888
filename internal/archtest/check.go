package archtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sort"
	"strings"
)

// Package is what the check needs of `go list -json -deps`.
type Package struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

// Violation is one broken rule: From depends on To, through Path.
type Violation struct {
	Rule string
	From string
	To   string
	// Path is the import chain from From to To.
	Path []string
}

func (v Violation) String() string {
	return fmt.Sprintf("%s: %s depends on %s (%s)", v.Rule, v.From, v.To, strings.Join(v.Path, " -> "))
}

// List runs `go list -deps -json` for patterns in dir.
func List(ctx context.Context, dir string, patterns ...string) ([]Package, error) {
	args := append([]string{"list", "-deps", "-json=ImportPath,Imports,Standard"}, patterns...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list in %s: %w: %s", dir, err, strings.TrimSpace(errb.String()))
	}
	var pkgs []Package
	dec := json.NewDecoder(&out)
	for {
		var p Package
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
}

// Check returns every rule broken by the package graph pkgs, one violation
// per (rule, package, forbidden dependency), with the shortest import
// chain that causes it.
func Check(pkgs []Package, rules []Rule) []Violation {
	imports := map[string][]string{}
	for _, p := range pkgs {
		if !p.Standard {
			imports[p.ImportPath] = p.Imports
		}
	}
	var out []Violation
	for _, r := range rules {
		for from := range imports {
			if !matchAny(r.From, from) {
				continue
			}
			for to, path := range reach(imports, from) {
				if to != from && matchAny(r.Deny, to) && !matchAny(r.Allow, to) {
					out = append(out, Violation{Rule: r.Name, From: from, To: to, Path: path})
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rule != out[j].Rule {
			return out[i].Rule < out[j].Rule
		}
		if out[i].From != out[j].From {
			return out[i].From < out[j].From
		}
		return out[i].To < out[j].To
	})
	return out
}

// reach is a breadth-first walk from start over non-standard packages,
// giving each reachable package's shortest import chain.
func reach(imports map[string][]string, start string) map[string][]string {
	paths := map[string][]string{start: {start}}
	queue := []string{start}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, next := range imports[cur] {
			if _, seen := paths[next]; seen {
				continue
			}
			if _, known := imports[next]; !known {
				continue // standard library or outside the listing
			}
			p := append(append([]string{}, paths[cur]...), next)
			paths[next] = p
			queue = append(queue, next)
		}
	}
	return paths
}
