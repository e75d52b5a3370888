package rules

import (
	"strings"
	"testing"

	"mamori/internal/runtime/event"
)

// benchMix is the stated event mix: 60% opens of watched paths, 30% execs, 10% connects, from
// four containers and the host, about 1 event in 20 matching a rule.
func benchMix() []*Input {
	var opens, execs, connects []*Input
	containers := []opt{ctr, func(in *Input) { ctr(in); in.Event.Container.ID, in.Event.Container.Name = "c2", "api" },
		func(in *Input) { ctr(in); in.Event.Container.ID, in.Event.Container.Namespace = "c3", "staging" },
		func(in *Input) {
			ctr(in)
			in.Event.Container.ID, in.Event.Container.Labels = "c4", map[string]string{"app": "db"}
		},
		func(*Input) {}}
	openPaths := []string{"/etc/passwd", "/etc/nsswitch.conf", "/etc/hosts", "/etc/resolv.conf", "/etc/ssl/certs/ca-certificates.crt",
		"/etc/nginx/nginx.conf", "/etc/localtime", "/run/secrets/kubernetes.io/serviceaccount/..data/token",
		"/home/app/.config/app.yaml", "/tmp/cache/x.json", "/etc/shadow", "/root/.aws/credentials"}
	procs := [][]string{{"/usr/sbin/nginx"}, {"/app/server", "--port", "8080"}, {"/usr/bin/python3", "app.py"}, {"/bin/cat"}}
	for i := 0; i < 60; i++ {
		p := procs[i%len(procs)]
		opens = append(opens, mk(event.KindOpen, containers[i%len(containers)], proc(p[0], p[1:]...), file(openPaths[i%len(openPaths)], oRDONLY)))
	}
	execArgs := [][]string{{"/bin/sh", "-c", "/docker-entrypoint.sh nginx"}, {"/usr/bin/curl", "-s", "http://api:8080/health"},
		{"/usr/local/bin/python3", "manage.py", "migrate"}, {"/bin/bash"}, {"/usr/bin/git", "status"}, {"/tmp/xmrig", "-o", "pool:3333"}}
	for i := 0; i < 30; i++ {
		a := execArgs[i%len(execArgs)]
		execs = append(execs, mk(event.KindExec, containers[i%len(containers)], proc(a[0], a[1:]...),
			parent("/usr/bin/containerd-shim-runc-v2"), ancestors("/usr/bin/containerd-shim-runc-v2", "/usr/lib/systemd/systemd")))
	}
	dsts := []struct {
		addr string
		port int
	}{{"10.0.0.20", 8080}, {"10.96.0.10", 53}, {"2001:db8::5", 443}, {"169.254.169.254", 80}, {"10.0.0.7", 5432}}
	for i := 0; i < 10; i++ {
		d := dsts[i%len(dsts)]
		fam := event.AFInet
		if strings.Contains(d.addr, ":") {
			fam = event.AFInet6
		}
		connects = append(connects, mk(event.KindConnect, containers[i%len(containers)], proc("/app/server"), conn(fam, "tcp", d.addr, d.port)))
	}
	// Interleave so that consecutive events differ in kind and container.
	var out []*Input
	for i := 0; i < 10; i++ {
		out = append(out, opens[i*6:i*6+6]...)
		out = append(out, execs[i*3:i*3+3]...)
		out = append(out, connects[i])
	}
	return out
}

// BenchmarkEval is one event through the whole built-in rule set (default ruleset) per op.
func BenchmarkEval(b *testing.B) {
	e := builtinEngine(b)
	ev := e.NewEvaluator()
	mix := benchMix()
	matches := 0
	for _, in := range mix {
		ms, err := ev.Eval(in)
		if err != nil {
			b.Fatal(err)
		}
		matches += len(ms)
	}
	b.Logf("mix: %d events, %d matches, %.1f rule evaluations per event", len(mix), matches, float64(ev.Stats.Evaluations)/float64(ev.Stats.Events))
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	i := 0
	for b.Loop() {
		if _, err := ev.Eval(mix[i]); err != nil {
			b.Fatal(err)
		}
		i++
		if i == len(mix) {
			i = 0
		}
	}
	reportCPU(b, start)
}

// BenchmarkEvalKind is the per-kind cost of the mix's parts.
func BenchmarkEvalKind(b *testing.B) {
	e := builtinEngine(b)
	mix := benchMix()
	for _, kind := range []event.Kind{event.KindOpen, event.KindExec, event.KindConnect} {
		var part []*Input
		for _, in := range mix {
			if in.Event.Kind == kind {
				part = append(part, in)
			}
		}
		b.Run(string(kind), func(b *testing.B) {
			ev := e.NewEvaluator()
			b.ReportAllocs()
			start := cpuTime()
			i := 0
			for b.Loop() {
				if _, err := ev.Eval(part[i%len(part)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportCPU(b, start)
		})
	}
}

// BenchmarkEvalWorstCase: opens of 4 KiB adversarial paths built to keep glob lists busy.
func BenchmarkEvalWorstCase(b *testing.B) {
	e := builtinEngine(b)
	ev := e.NewEvaluator()
	var mix []*Input
	for _, prefix := range []string{"/root/.config/gcloud/", "/home/a/.config/systemd/user/", "/etc/cron.d/", "/home/x/.ssh/id_"} {
		p := prefix + strings.Repeat("a/", (4000-len(prefix))/2)
		mix = append(mix, mk(event.KindOpen, ctr, proc("/bin/cat"), file(p, oRDONLY)))
		mix = append(mix, mk(event.KindWrite, ctr, proc("/bin/cat"), file(p, oWrite)))
	}
	b.ReportAllocs()
	start := cpuTime()
	i := 0
	for b.Loop() {
		if _, err := ev.Eval(mix[i%len(mix)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	reportCPU(b, start)
}

// BenchmarkLoadBuiltin is parsing, checking and planning the built-in rule set.
func BenchmarkLoadBuiltin(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadBuiltin(); err != nil {
			b.Fatal(err)
		}
	}
}
