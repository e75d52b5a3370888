// Command host-integrity drives the integrity engine for
// bench/host-integrity.sh: build a baseline of one directory tree, or
// compare the tree with a saved baseline, the way `mamori agent` runs the
// engine (internal/host/integrity), with no agent around it.
//
//	go run ./bench/host-integrity -path /tmp/copy/usr -baseline b.fim build
//	go run ./bench/host-integrity -path /tmp/copy/usr -baseline b.fim -events ev.jsonl compare
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"mamori/internal/host/integrity"
)

func main() {
	path := flag.String("path", "", "absolute directory to monitor (one rule, every attribute)")
	base := flag.String("baseline", "", "baseline file")
	events := flag.String("events", "", "compare: write events as JSON lines here")
	rehash := flag.Bool("rehash", false, "compare: read every file again")
	workers := flag.Int("workers", 0, "parallel workers (default: CPUs)")
	flag.Parse()
	if err := run(*path, *base, *events, *rehash, *workers, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "host-integrity:", err)
		os.Exit(1)
	}
}

func run(path, base, events string, rehash bool, workers int, cmd string) error {
	rs, err := integrity.ParseRules(fmt.Appendf(nil, "rules:\n  - name: tree\n    paths: [%q]\n", path))
	if err != nil {
		return err
	}
	opts := []integrity.Option{integrity.WithCollectors(), integrity.WithRehash(rehash)}
	if workers > 0 {
		opts = append(opts, integrity.WithWorkers(workers))
	}
	s, err := integrity.NewScanner(rs, opts...)
	if err != nil {
		return err
	}
	ctx := context.Background()
	start := time.Now()
	switch cmd {
	case "build":
		b, err := s.Build(ctx, nil, nil)
		if err != nil {
			return err
		}
		if err := b.Save(base); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "baseline: %d files, %d hashed (%d MB), %d errors, %v\n", len(b.Files), b.Stats.Hashed, b.Stats.Bytes>>20, b.Stats.ErrorCount, time.Since(start).Round(time.Millisecond))
	case "compare":
		old, err := integrity.Load(base)
		if err != nil {
			return err
		}
		cur, err := s.Build(ctx, old, old.Key)
		if err != nil {
			return err
		}
		evs := s.Diff(old, cur, integrity.SourceCompare)
		if events != "" {
			f, err := os.Create(events)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(f)
			for _, e := range evs {
				if err := enc.Encode(e); err != nil {
					return err
				}
			}
			if err := f.Close(); err != nil {
				return err
			}
		}
		fmt.Fprintf(os.Stderr, "compare: %d files, %d hashed, %d reused, %d events, %v\n", len(cur.Files), cur.Stats.Hashed, cur.Stats.Reused, len(evs), time.Since(start).Round(time.Millisecond))
	default:
		return fmt.Errorf("command %q: want build or compare", cmd)
	}
	return nil
}
