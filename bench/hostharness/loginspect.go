package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"mamori/internal/host/loginspect"
	"mamori/internal/host/loginspect/rules"
	"mamori/internal/model"
)

// runLoginspect runs log inspection over files:
//
//	hostharness loginspect -file auth.log [-format syslog] [-rules extra.yaml]... [-once] [-state DIR] [-host NAME]
//
// Events are printed as JSON lines on stdout, the counters as JSON on stderr at exit. -once
// reads the files to their end and exits; without it they are followed until SIGINT/SIGTERM.
func runLoginspect(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("loginspect", flag.ExitOnError)
	var files, ruleFiles multi
	fs.Var(&files, "file", "log file or glob (repeatable)")
	fs.Var(&ruleFiles, "rules", "rule file loaded after the built-ins (repeatable)")
	format := fs.String("format", "syslog", "syslog, cri, docker, klog, k8s-audit, auditd")
	once := fs.Bool("once", false, "read the files to their end and exit")
	state := fs.String("state", "", "state directory (offsets); none: start afresh")
	host := fs.String("host", "", "host name for events")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("loginspect: -file is required")
	}
	var paths []string
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return err
		}
		paths = append(paths, abs)
	}
	var extra []rules.Source
	for _, f := range ruleFiles {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		extra = append(extra, rules.Source{Name: f, Data: data})
	}
	o := &out{enc: json.NewEncoder(os.Stdout)}
	opts := []loginspect.Option{
		loginspect.WithSources(loginspect.SourceConfig{Name: "bench", Format: *format, Paths: paths}),
		loginspect.WithJournal(nil), loginspect.WithRules(extra...), loginspect.WithOnce(*once), loginspect.WithHost(*host),
		loginspect.WithHandler(func(_ context.Context, ev model.Event) error { o.print(ev); return nil }),
	}
	if *state != "" {
		abs, err := filepath.Abs(*state)
		if err != nil {
			return err
		}
		opts = append(opts, loginspect.WithStateDir(abs))
	}
	in, err := loginspect.New(opts...)
	if err != nil {
		return err
	}
	start := time.Now()
	err = in.Run(ctx)
	s := in.Stats()
	summary := map[string]any{
		"seconds": time.Since(start).Seconds(), "lines": s.Lines, "records": s.Records, "events": s.Events,
		"decodeErrors": s.DecodeErrors, "ruleErrors": s.RuleErrors, "rules": s.Rules, "tail": s.Tail,
	}
	b, _ := json.Marshal(summary)
	fmt.Fprintln(os.Stderr, string(b))
	return err
}
