// Command hostharness runs a host-protection engine alone, for the bench
// scripts and for trying an engine by hand before `mamori agent` wires it:
//
//	hostharness antimalware -mark DIR [-mode log|block] [-clamd unix:///…] [-no-builtin] [-quarantine DIR]
//	hostharness appcontrol  -mark DIR -list allowlist.json [-mode log|block]
//	hostharness inventory   -o allowlist.json [-dir DIR]... [-dpkg] [-rpm]
//	hostharness loginspect  -file auth.log [-format syslog] [-rules extra.yaml] [-once]
//
// The engines run until SIGINT/SIGTERM; detections and decisions are
// printed as JSON lines (the event envelope) on stdout, and the engine's
// counters on stderr at exit. -ready FILE is created once the marks are in
// place.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"mamori/internal/host/antimalware"
	"mamori/internal/host/appcontrol"
	"mamori/internal/host/fanotify"
)

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: hostharness antimalware|appcontrol|inventory|loginspect [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "antimalware":
		err = runAntimalware(ctx, os.Args[2:])
	case "appcontrol":
		err = runAppcontrol(ctx, os.Args[2:])
	case "inventory":
		err = runInventory(ctx, os.Args[2:])
	case "loginspect":
		err = runLoginspect(ctx, os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "hostharness:", err)
		os.Exit(1)
	}
}

// out prints events as JSON lines, one writer at a time.
type out struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (o *out) print(v any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_ = o.enc.Encode(v) // stdout: nothing better to do with an error
}

func ready(path string) error {
	if path == "" {
		return nil
	}
	return os.WriteFile(path, []byte("ready\n"), 0o644)
}

func listenerOptions(budget time.Duration, workers int) []fanotify.Option {
	return []fanotify.Option{fanotify.WithBudget(budget), fanotify.WithWorkers(workers),
		fanotify.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil)))}
}

func runAntimalware(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("antimalware", flag.ExitOnError)
	var marks multi
	fs.Var(&marks, "mark", "mount to watch (repeatable)")
	mode := fs.String("mode", "block", "log or block")
	clamd := fs.String("clamd", "", "clamd address (unix:///path)")
	noBuiltin := fs.Bool("no-builtin", false, "leave the built-in hash list out")
	qdir := fs.String("quarantine", "", "quarantine directory (block mode)")
	readyFile := fs.String("ready", "", "file created once watching")
	budget := fs.Duration("budget", fanotify.DefaultBudget, "per-event budget")
	workers := fs.Int("workers", fanotify.DefaultWorkers, "workers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := antimalware.ParseMode(*mode)
	if err != nil {
		return err
	}
	var sopts []antimalware.ScannerOption
	if *clamd != "" {
		sopts = append(sopts, antimalware.WithClamd(*clamd))
	}
	if *noBuiltin {
		sopts = append(sopts, antimalware.WithBuiltinHashes(false))
	}
	s, err := antimalware.NewScanner(ctx, sopts...)
	if err != nil {
		return err
	}
	o := &out{enc: json.NewEncoder(os.Stdout)}
	oopts := []antimalware.OnAccessOption{antimalware.WithReport(func(d antimalware.Detection) { o.print(d.Event()) })}
	if *qdir != "" {
		q, err := antimalware.OpenQuarantine(*qdir)
		if err != nil {
			return err
		}
		defer q.Close()
		oopts = append(oopts, antimalware.WithQuarantine(q))
	}
	oa, err := antimalware.NewOnAccess(s, m, oopts...)
	if err != nil {
		return err
	}
	defer oa.Close() // stops the late scans
	var ms []antimalware.Mark
	for _, p := range marks {
		ms = append(ms, antimalware.Mark{Path: p})
	}
	l, err := oa.Listen(ms, listenerOptions(*budget, *workers)...)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "antimalware: engines %v, notices %v, mode %s, marks %v\n", s.Engines(), s.Notices(), m, marks)
	if err := ready(*readyFile); err != nil {
		return err
	}
	err = l.Run(ctx, oa)
	st, _ := json.Marshal(map[string]any{"listener": l.Stats(), "onaccess": oa.Stats(), "scanner": s.Stats(), "cache": s.CacheStats()})
	fmt.Fprintf(os.Stderr, "stats %s\n", st)
	return err
}

func runAppcontrol(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("appcontrol", flag.ExitOnError)
	var marks multi
	fs.Var(&marks, "mark", "mount to watch (repeatable)")
	mode := fs.String("mode", "block", "log or block")
	listFile := fs.String("list", "", "allow-list (appcontrol export format)")
	readyFile := fs.String("ready", "", "file created once watching")
	scripts := fs.Bool("scripts", true, "check scripts opened by interpreters")
	libs := fs.Bool("libraries", true, "check shared objects opened")
	budget := fs.Duration("budget", fanotify.DefaultBudget, "per-event budget")
	workers := fs.Int("workers", fanotify.DefaultWorkers, "workers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	m, err := appcontrol.ParseMode(*mode)
	if err != nil {
		return err
	}
	list := appcontrol.NewList()
	if *listFile != "" {
		if list, err = appcontrol.Load(*listFile); err != nil {
			return err
		}
	}
	o := &out{enc: json.NewEncoder(os.Stdout)}
	e, err := appcontrol.NewEnforcer(list, m, appcontrol.WithScripts(*scripts), appcontrol.WithLibraries(*libs),
		appcontrol.WithReport(func(d appcontrol.Decision) { o.print(d.Event()) }))
	if err != nil {
		return err
	}
	var ms []appcontrol.Mark
	for _, p := range marks {
		ms = append(ms, appcontrol.Mark{Path: p})
	}
	l, err := e.Listen(ms, listenerOptions(*budget, *workers)...)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "appcontrol: %d entries, mode %s, marks %v\n", list.Len(), m, marks)
	if err := ready(*readyFile); err != nil {
		return err
	}
	err = l.Run(ctx, e)
	st, _ := json.Marshal(map[string]any{"listener": l.Stats(), "enforcer": e.Stats()})
	fmt.Fprintf(os.Stderr, "stats %s\n", st)
	return err
}

func runInventory(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("inventory", flag.ExitOnError)
	var dirs multi
	fs.Var(&dirs, "dir", "directory to inventory (repeatable; default: PATH and library dirs)")
	outFile := fs.String("o", "allowlist.json", "output allow-list")
	dpkg := fs.Bool("dpkg", false, "learn from dpkg too")
	rpm := fs.Bool("rpm", false, "learn from rpm too")
	rate := fs.Int64("rate", appcontrol.DefaultLearnRate, "bytes per second read (<0: no limit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	list := appcontrol.NewList()
	lo := appcontrol.LearnOptions{BytesPerSecond: *rate}
	if len(dirs) > 0 || (!*dpkg && !*rpm) {
		sum, err := appcontrol.Inventory(ctx, list, appcontrol.InventoryOptions{LearnOptions: lo, Dirs: dirs})
		if err != nil {
			return err
		}
		report("inventory", sum)
	}
	if *dpkg {
		sum, err := appcontrol.LearnDpkg(ctx, list, lo)
		if err != nil {
			return err
		}
		report("dpkg", sum)
	}
	if *rpm {
		sum, err := appcontrol.LearnRPM(ctx, list, lo, appcontrol.RPMOptions{})
		if err != nil {
			return err
		}
		report("rpm", sum)
	}
	host, _ := os.Hostname() // informational
	return list.Save(*outFile, host)
}

func report(what string, sum appcontrol.LearnSummary) {
	b, _ := json.Marshal(sum)
	fmt.Fprintf(os.Stderr, "%s %s\n", what, b)
}
