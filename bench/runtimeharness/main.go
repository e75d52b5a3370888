// Command runtimeharness drives bench/runtime.sh: the event storm
// generator (it measures the agent, not itself), the reference workload,
// the "floor" sensor (the same hooks with programs that return at once) and
// the statistics of the alternating runs.
//
//	runtimeharness storm --stats URL --pid PID --rate N --duration D --mix open=60,exec=30,connect=10
//	runtimeharness workload --n N
//	runtimeharness floor [--hooks raw|tracepoint]
//	runtimeharness run CMD ARGS...
//	runtimeharness ci FILE      (lines "off SECONDS" / "on SECONDS" / "floor SECONDS")
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"mamori/internal/runtime/event"
	"mamori/internal/runtime/sensor"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: runtimeharness storm|workload|floor|ci ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "storm":
		err = storm(os.Args[2:])
	case "workload":
		err = workload(os.Args[2:])
	case "floor":
		err = floor(os.Args[2:])
	case "run":
		err = runCmd(os.Args[2:])
	case "ci":
		err = ci(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "runtimeharness:", err)
		os.Exit(1)
	}
}

// agentCounters are what the storm reads from the agent's /stats.
type agentCounters struct {
	Received, Processed, Dropped, Lost uint64
	Matches                            uint64
}

func readStats(url string) (agentCounters, error) {
	resp, err := http.Get(url)
	if err != nil {
		return agentCounters{}, err
	}
	defer resp.Body.Close()
	var s struct {
		Modules struct {
			Runtime struct {
				Received, Processed, Dropped, Matches uint64
				Sensor                                struct{ Lost uint64 }
			} `json:"runtime"`
		} `json:"modules"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return agentCounters{}, err
	}
	r := s.Modules.Runtime
	return agentCounters{Received: r.Received, Processed: r.Processed, Dropped: r.Dropped, Lost: r.Sensor.Lost, Matches: r.Matches}, nil
}

// procCPU returns a process's user+system CPU seconds and its RSS in MiB.
func procCPU(pid int) (float64, float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	rssPages, _ := strconv.ParseFloat(f[21], 64)
	return (ut + st) / 100, rssPages * float64(os.Getpagesize()) / (1 << 20), nil
}

func parseMix(s string) (open, exec, conn int, err error) {
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, e := strconv.Atoi(v)
		if e != nil {
			return 0, 0, 0, fmt.Errorf("mix %q: %v", kv, e)
		}
		switch k {
		case "open":
			open = n
		case "exec":
			exec = n
		case "connect":
			conn = n
		default:
			return 0, 0, 0, fmt.Errorf("mix: unknown action %q", k)
		}
	}
	if open+exec+conn != 100 {
		return 0, 0, 0, errors.New("mix: the shares must add up to 100")
	}
	return open, exec, conn, nil
}

// storm generates actions at a target rate for a duration, in the given
// mix, then reports what the agent handled, its CPU and RSS, and losses.
// An idle window first measures the machine's own event rate.
func storm(args []string) error {
	fs := flag.NewFlagSet("storm", flag.ExitOnError)
	statsURL := fs.String("stats", "", "the agent's /stats URL")
	pid := fs.Int("pid", 0, "the agent's PID")
	rate := fs.Int("rate", 1000, "actions per second")
	dur := fs.Duration("duration", 10*time.Second, "how long")
	mix := fs.String("mix", "open=60,exec=30,connect=10", "shares of actions")
	workers := fs.Int("exec-workers", 4, "goroutines that exec")
	openPath := fs.String("open-path", "/etc/hostname", "a watched path to open")
	fs.Parse(args)
	pOpen, pExec, _, err := parseMix(*mix)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	addr := ln.Addr().(*net.TCPAddr)

	// The machine's own rate, before the storm.
	idle := 3 * time.Second
	a0, err := readStats(*statsURL)
	if err != nil {
		return err
	}
	time.Sleep(idle)
	a1, _ := readStats(*statsURL)
	background := float64(a1.Received-a0.Received) / idle.Seconds()

	c0, _, err := procCPU(*pid)
	if err != nil {
		return err
	}
	s0, _ := readStats(*statsURL)
	var opens, execs, conns, execFail, execSkipped atomic.Uint64
	execQ := make(chan struct{}, 1<<16)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			attr := &syscall.ProcAttr{Files: []uintptr{0, 1, 2}}
			for {
				select {
				case <-ctx.Done():
					return
				case <-execQ:
				}
				p, err := syscall.ForkExec("/bin/busybox", []string{"true"}, attr)
				if err != nil {
					execFail.Add(1)
					continue
				}
				var ws syscall.WaitStatus
				syscall.Wait4(p, &ws, 0, nil)
				execs.Add(1)
			}
		}()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	tick := 10 * time.Millisecond
	perTick := float64(*rate) * tick.Seconds()
	carry := 0.0
	sa := &syscall.SockaddrInet4{Port: addr.Port, Addr: [4]byte{127, 0, 0, 1}}
	for next := start; time.Since(start) < *dur; next = next.Add(tick) {
		carry += perTick
		n := int(carry)
		carry -= float64(n)
		for range n {
			x := rng.IntN(100)
			switch {
			case x < pOpen:
				if fd, err := syscall.Open(*openPath, syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err == nil {
					syscall.Close(fd)
				}
				opens.Add(1)
			case x < pOpen+pExec:
				select {
				case execQ <- struct{}{}:
				default: // the exec workers are saturated
					execSkipped.Add(1)
				}
			default:
				if fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0); err == nil {
					syscall.Connect(fd, sa)
					syscall.Close(fd)
				}
				conns.Add(1)
			}
		}
		if d := time.Until(next.Add(tick)); d > 0 {
			time.Sleep(d)
		}
	}
	cancel()
	wg.Wait()
	wall := time.Since(start)
	// Let the agent drain what is queued before reading its counters.
	var s1 agentCounters
	for range 50 {
		time.Sleep(200 * time.Millisecond)
		s1, _ = readStats(*statsURL)
		if s1.Received == s1.Processed+s1.Dropped {
			break
		}
	}
	c1, rss, _ := procCPU(*pid)
	actions := opens.Load() + execs.Load() + conns.Load()
	recv := float64(s1.Received - s0.Received)
	out := map[string]any{
		"targetRate":         *rate,
		"actionsPerSec":      round(float64(actions) / wall.Seconds()),
		"opens":              opens.Load(),
		"execs":              execs.Load(),
		"connects":           conns.Load(),
		"execsSkipped":       execSkipped.Load() + execFail.Load(),
		"seconds":            round(wall.Seconds()),
		"agentEventsPerSec":  round(recv / wall.Seconds()),
		"backgroundPerSec":   round(background),
		"processedPerSec":    round(float64(s1.Processed-s0.Processed) / wall.Seconds()),
		"matches":            s1.Matches - s0.Matches,
		"lostInKernel":       s1.Lost - s0.Lost,
		"droppedInQueue":     s1.Dropped - s0.Dropped,
		"agentCPUPercentOf1": round(100 * (c1 - c0) / wall.Seconds()),
		"agentCPUNsPerEvent": round(1e9 * (c1 - c0) / math.Max(recv, 1)),
		"agentRSSMiB":        round(rss),
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
	return nil
}

func round(f float64) float64 { return math.Round(f*10) / 10 }

// workload is the reference: a syscall-heavy loop of file opens (half of a
// watched path, half not), reads, closes and stats. It prints its wall
// time and its own CPU time (the hooks' kernel cost shows in system time).
func workload(args []string) error {
	fs := flag.NewFlagSet("workload", flag.ExitOnError)
	n := fs.Int("n", 200000, "iterations")
	fs.Parse(args)
	buf := make([]byte, 256)
	var r0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
	start := time.Now()
	var st syscall.Stat_t
	for i := range *n {
		p := "/etc/hostname"
		if i%2 == 1 {
			p = "/usr/lib/os-release"
		}
		fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		syscall.Read(fd, buf)
		syscall.Close(fd)
		syscall.Stat(p, &st)
	}
	wall := time.Since(start)
	var r1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
	cpu := tv(r1.Utime) - tv(r0.Utime) + tv(r1.Stime) - tv(r0.Stime)
	fmt.Printf("%.6f %.6f\n", wall.Seconds(), cpu)
	return nil
}

// runCmd runs a command (the "build" reference workload) and prints its
// wall time and its CPU time (user+system of it and its children).
func runCmd(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: run CMD ARGS")
	}
	start := time.Now()
	c := exec.Command(args[0], args[1:]...)
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Run(); err != nil {
		return err
	}
	wall := time.Since(start)
	var r syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &r)
	fmt.Printf("%.6f %.6f\n", wall.Seconds(), tv(r.Utime)+tv(r.Stime))
	return nil
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// floor attaches the sensor's system call hooks (--hooks raw or
// tracepoint) with nothing to report: asked only for bpf events. With raw
// hooks its sys_exit program sees every system call and returns after one
// table load (an unlisted call); with tracepoint hooks only bpf() runs a
// program, so the reference workload runs none. The sched_process_*
// programs are not attached. What the workload loses under it is the cost
// of the hooks on the calls the sensor does not report.
func floor(args []string) error {
	fs := flag.NewFlagSet("floor", flag.ExitOnError)
	h := fs.String("hooks", "raw", "system call hooks: raw or tracepoint")
	fs.Parse(args)
	hooks, err := sensor.ParseSyscallHooks(*h)
	if err != nil {
		return err
	}
	// the sensor's log on stderr: why asked-for tracepoint hooks ended up raw
	lg := slog.New(slog.NewTextHandler(os.Stderr, nil))
	s, err := sensor.New(sensor.WithMode(sensor.ModeEBPF), sensor.WithSyscallHooks(hooks), sensor.WithKinds(event.KindBPF), sensor.WithLogger(lg))
	if err != nil {
		return err
	}
	defer s.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	fmt.Printf("floor: hooks attached (%s)\n", s.SyscallHooks())
	return s.Run(ctx, func(*event.Event) {})
}

// ci reads "label seconds" lines and reports each label's mean and the
// slowdown of "on" and "floor" against "off" with a 95% bootstrap
// confidence interval of the ratio of means.
func ci(args []string) error {
	if len(args) != 1 {
		return errors.New("ci FILE")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	runs := map[string][]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(fs[1], 64)
		if err != nil {
			continue
		}
		runs[fs[0]] = append(runs[fs[0]], v)
	}
	off := runs["off"]
	if len(off) < 2 {
		return errors.New("ci: fewer than 2 off runs")
	}
	labels := make([]string, 0, len(runs))
	for l := range runs {
		labels = append(labels, l)
	}
	sort.Strings(labels)
	rng := rand.New(rand.NewPCG(7, 11))
	for _, l := range labels {
		x := runs[l]
		m, sd := meanSD(x)
		line := fmt.Sprintf("%-16s n=%d mean=%.4f sd=%.4f", l, len(x), m, sd)
		if l != "off" {
			mo, _ := meanSD(off)
			const B = 20000
			ratios := make([]float64, B)
			for b := range B {
				ratios[b] = meanOf(resample(rng, x)) / meanOf(resample(rng, off))
			}
			sort.Float64s(ratios)
			line += fmt.Sprintf("  slowdown %+.2f%% (95%% CI %+.2f%% .. %+.2f%%)", 100*(m/mo-1),
				100*(ratios[B*25/1000]-1), 100*(ratios[B*975/1000]-1))
		}
		fmt.Println(line)
	}
	return nil
}

func resample(rng *rand.Rand, x []float64) []float64 {
	out := make([]float64, len(x))
	for i := range out {
		out[i] = x[rng.IntN(len(x))]
	}
	return out
}

func meanOf(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

func meanSD(x []float64) (float64, float64) {
	m := meanOf(x)
	v := 0.0
	for _, y := range x {
		v += (y - m) * (y - m)
	}
	if len(x) > 1 {
		v /= float64(len(x) - 1)
	}
	return m, math.Sqrt(v)
}
