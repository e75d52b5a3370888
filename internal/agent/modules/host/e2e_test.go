package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mamori/internal/api"
	"mamori/internal/host/fanotify/fanotifytest"
	"mamori/internal/host/loginspect/logtest"
	"mamori/internal/model"
)

// TestHostModulesE2E runs the host modules through a real `mamori agent`
// talking to a real `mamori server`, every module configured by the
// server's host group and every event checked at the server:
//
//   - anti-malware (block): EICAR opened in a container (chroot, mount and
//     PID namespaces) denied and quarantined, and a scan of that container
//     (by its ID) through /proc/PID/root finds and quarantines another;
//     EICAR opened and executed on the host denied and quarantined; the
//     quarantine listed on the server, one entry restored (its hash
//     allowed) and one deleted through requests;
//   - integrity: a changed binary, a changed /etc file, a new setuid file,
//     a new user and a new listening port, each with before and after; a
//     baseline rebuild on request;
//   - application control: an unknown binary logged, then blocked once the
//     group's mode is block, then allowed once its hash is on the group's
//     list;
//   - log inspection: an SSH brute force and a sudo failure burst written
//     by the real sshd and sudo through /dev/log to an rsyslogd the test
//     started, detected once each and forwarded to a syslog collector;
//   - firewall (a second agent in a network namespace the test made, its
//     settings by its cluster's group): a rule blocks a port; a change that
//     cuts the agent off its server is rolled back; in log mode what would
//     be dropped or rejected (inbound, outbound) is an event with its rule,
//     direction, protocol, addresses and port, one per flow per window; in
//     block mode a rule with log: true makes firewall.dropped events;
//   - safety: memory under a storm of file events, and the agent killed
//     while it holds permission events (the openers proceed).
//
// Marks are only on file systems the test mounts, firewall rules only in
// its namespace. MAMORI_TEST_HOST=1, root.
func TestHostModulesE2E(t *testing.T) {
	fanotifytest.Privileged(t)
	logtest.Skip(t)
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	begin := time.Now()
	ctx := context.Background()
	bin := buildMamori(t, t.TempDir())
	t.Logf("built mamori in %s", time.Since(begin).Round(time.Millisecond))
	ns := newNetns(t)
	srv := startServer(t, bin)

	// The test's file systems.
	am := fanotifytest.Tmpfs(t, 64)  // anti-malware's on-access mark
	fim := fanotifytest.Tmpfs(t, 16) // integrity's root
	ac := fanotifytest.Tmpfs(t, 16)  // application control's mark
	trueBin, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	for p, c := range map[string]string{"bin/tool": string(trueBin), "etc/app.conf": "listen = 8080\n",
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n"} {
		mustWrite(t, filepath.Join(fim, p), []byte(c), 0o755)
	}
	// Log inspection's fixture: rsyslogd (with a collector input), the
	// namespace of the test user, sshd.
	logDir := t.TempDir()
	if err := os.Chmod(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	logtest.PrepareEtc(t, logDir)
	rs := logtest.StartRsyslog(t, logDir, true)
	holder := logtest.Namespace(t, logDir, rs.Sock)
	sshPort := logtest.StartSSHD(t, logDir, holder)

	// The default group (a bare host's) gets the settings.
	var groups api.HostGroupList
	srv.do(t, http.MethodGet, api.PathHostGroups, nil, &groups)
	def := groups.Groups[0]
	if !def.Default {
		t.Fatalf("first group %+v", def)
	}
	yes := true
	settings := api.HostSettings{
		PollInterval: "1s",
		Antimalware: api.AntimalwareSettings{Mode: "block", QuarantineDir: filepath.Join(t.TempDir(), "quarantine"),
			OnAccess: api.AntimalwareOnAccess{Paths: []string{am}, Filesystem: true}, Scheduled: api.AntimalwareSchedule{Off: true}},
		Integrity: api.IntegritySettings{DefaultRules: off(), Root: fim, Watch: "auto", PollInterval: "1s",
			Rules: []api.IntegrityRule{{Name: "binaries", Severity: "high", Paths: []string{"/bin"}}, {Name: "etc", Paths: []string{"/etc"}}}},
		LogInspect: api.LogInspectSettings{Journal: "off", Sources: []api.LogSource{{Name: "auth", Format: "syslog", Paths: []string{rs.AuthLog}}},
			Forward: api.LogForward{Address: fmt.Sprintf("127.0.0.1:%d", rs.SIEMPort), Protocol: "tcp"}},
		AppControl: api.AppControlSettings{Enabled: &yes, Mode: "log", Paths: []string{ac}, Filesystem: true},
		Firewall:   api.FirewallSettings{Enabled: off()},
	}
	putGroup := func(g api.HostGroup, s api.HostSettings) {
		t.Helper()
		srv.do(t, http.MethodPut, fmt.Sprintf("%s/%d", api.PathHostGroups, g.ID), api.HostGroupRequest{Name: g.Name, Cluster: g.Cluster, Settings: s}, nil)
	}
	putGroup(def, settings)
	// The allow-list is not empty (nothing to learn first): /bin/true is on it.
	sum := sha256.Sum256(trueBin)
	srv.do(t, http.MethodPost, fmt.Sprintf("%s/%d/allowlist", api.PathHostGroups, def.ID),
		api.AllowListAdd{Entries: []api.AllowListEntry{{SHA256: hex.EncodeToString(sum[:]), Path: "/bin/true"}}}, nil)

	node := "e2e-host-" + randHex(3)
	a := startAgent(t, bin, node, srv, srv.token(t, "e2e-host", ""), nil, true)
	waitFor(t, "every host module running", 90*time.Second, func() bool {
		var am AntimalwareStats
		var fs IntegrityStats
		var li LogInspectStats
		var acs AppControlStats
		return a.moduleStats(t, "antimalware", &am) && am.State == "running" && am.OnAccess != nil &&
			a.moduleStats(t, "integrity", &fs) && fs.Monitor != nil && fs.Monitor.Compares > 0 &&
			a.moduleStats(t, "loginspect", &li) && li.State == "running" &&
			a.moduleStats(t, "appcontrol", &acs) && acs.Enforcer != nil
	})
	t.Logf("agent running every module in %s", time.Since(begin).Round(time.Millisecond))
	agentID := agentIDOf(t, srv, node)

	t.Run("container", func(t *testing.T) {
		root := filepath.Join(am, "ctr")
		if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
			t.Fatal(err)
		}
		c := fanotifytest.StartContainer(t, root)
		cid := randHex(32)
		inCgroup(t, c.PID, "mamori-e2e-"+cid)
		eicar := fanotifytest.Eicar()
		mustWrite(t, filepath.Join(root, "tmp", "eicar.com"), eicar, 0o755)
		if r := c.Exec(10*time.Second, "/bin/sh", "-c", ": < /tmp/eicar.com"); !r.Denied() {
			t.Fatalf("open inside the container: %v %q", r.Err, r.Output)
		}
		srv.waitEvent(t, node, "antimalware", "the detection in the container", 30*time.Second, func(e api.EventRecord) bool {
			return e.Event.File != nil && e.Event.File.Path == filepath.Join(root, "tmp", "eicar.com") && e.Event.Action == "quarantine"
		})
		// A scan of the container, by its ID, through /proc/PID/root.
		mustWrite(t, filepath.Join(root, "tmp", "eicar2.com"), eicar, 0o644)
		r, err := srv.c.CreateHostRequest(ctx, agentID, api.HostRequestCreate{Kind: api.RequestScan, Container: cid[:12]})
		if err != nil {
			t.Fatal(err)
		}
		waitRequest(t, srv, agentID, r.ID, "1 infected, 1 quarantined")
		e := srv.waitEvent(t, node, "antimalware", "the scan's detection", 30*time.Second, func(e api.EventRecord) bool {
			return e.Event.File != nil && e.Event.File.Path == "/tmp/eicar2.com"
		})
		if e.Event.Container == nil || e.Event.Container.ID != cid || e.Event.Details["root"] != fmt.Sprintf("/proc/%d/root", c.PID) ||
			e.Event.Details["source"] != "on-demand" || e.Event.Action != "quarantine" {
			t.Errorf("scan event %+v %+v", e.Event, e.Event.Container)
		}
		if _, err := os.Lstat(filepath.Join(root, "tmp", "eicar2.com")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the container's file is still in place: %v", err)
		}
	})

	t.Run("antimalware", func(t *testing.T) {
		eicar := fanotifytest.Eicar()
		opened, executed := filepath.Join(am, "eicar.com"), filepath.Join(am, "eicar-run.com")
		mustWrite(t, opened, eicar, 0o644)
		mustWrite(t, executed, eicar, 0o755)
		if _, err := os.ReadFile(opened); !errors.Is(err, fs.ErrPermission) {
			t.Fatalf("open of EICAR: %v, want EPERM", err)
		}
		if err := exec.Command(executed).Run(); !errors.Is(err, syscall.EPERM) {
			t.Fatalf("exec of EICAR: %v, want EPERM", err)
		}
		for _, p := range []string{opened, executed} {
			e := srv.waitEvent(t, node, "antimalware", "the detection of "+p, 30*time.Second, func(e api.EventRecord) bool {
				return e.Event.File != nil && e.Event.File.Path == p && e.Event.Action == "quarantine"
			})
			if e.Event.Details["quarantine_id"] == "" || e.Event.Severity != model.SeverityCritical {
				t.Errorf("event %+v", e.Event)
			}
			if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s still in place: %v", p, err)
			}
		}
		ids := map[string]string{}
		waitFor(t, "the quarantine on the server", 30*time.Second, func() bool {
			q, err := srv.c.Quarantine(ctx, agentID)
			if err != nil {
				return false
			}
			for _, e := range q.Entries {
				ids[e.Entry.Path] = e.Entry.ID
			}
			return ids[opened] != "" && ids[executed] != ""
		})
		// Restore one (its hash allowed first) and delete the other.
		restore, err := srv.c.CreateHostRequest(ctx, agentID, api.HostRequestCreate{Kind: api.RequestQuarantineRestore, Entry: ids[opened], Allow: true})
		if err != nil {
			t.Fatal(err)
		}
		del, err := srv.c.CreateHostRequest(ctx, agentID, api.HostRequestCreate{Kind: api.RequestQuarantineDelete, Entry: ids[executed]})
		if err != nil {
			t.Fatal(err)
		}
		waitRequest(t, srv, agentID, restore.ID, "restored "+opened)
		waitRequest(t, srv, agentID, del.ID, "deleted")
		b, err := os.ReadFile(opened)
		if err != nil || string(b) != string(eicar) {
			t.Fatalf("restored file (allowed by its hash): %v %q", err, b)
		}
		waitFor(t, "the quarantine report after restore and delete", 30*time.Second, func() bool {
			q, err := srv.c.Quarantine(ctx, agentID)
			if err != nil {
				return false
			}
			for _, e := range q.Entries {
				if e.Entry.ID == ids[opened] || e.Entry.ID == ids[executed] {
					return false
				}
			}
			return true
		})
	})

	t.Run("integrity", func(t *testing.T) {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		port := ln.Addr().(*net.TCPAddr).Port
		appendTo(t, filepath.Join(fim, "bin/tool"), "\x00patched")
		mustWrite(t, filepath.Join(fim, "etc/app.conf"), []byte("listen = 0.0.0.0:8080\n"), 0o644)
		// As `cp /bin/true x && chmod u+s x` does it.
		if err := os.WriteFile(filepath.Join(fim, "bin/suid"), trueBin, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(fim, "bin/suid"), os.ModeSetuid|0o755); err != nil {
			t.Fatal(err)
		}
		appendTo(t, filepath.Join(fim, "etc/passwd"), "mallory:x:0:0::/root:/bin/sh\n")
		check := func(what string, pred func(e api.EventRecord) bool) api.EventRecord {
			t.Helper()
			return srv.waitEvent(t, node, "integrity", what, 30*time.Second, pred)
		}
		kindKey := func(kind, key, change string) func(e api.EventRecord) bool {
			return func(e api.EventRecord) bool {
				d := e.Event.Details
				return d["kind"] == kind && d["key"] == key && d["change"] == change
			}
		}
		bin := check("the changed binary", kindKey("file", "/bin/tool", "modified"))
		if c := bin.Event.Change; c == nil || c.Before["sha256"] == c.After["sha256"] || c.Before["size"] == c.After["size"] || bin.Event.Rule.ID != "integrity.binaries" {
			t.Errorf("binary: %+v", bin.Event)
		}
		conf := check("the changed /etc file", kindKey("file", "/etc/app.conf", "modified"))
		if c := conf.Event.Change; c == nil || c.Before["sha256"] == c.After["sha256"] {
			t.Errorf("etc: %+v", conf.Event)
		}
		suid := check("the new setuid file", func(e api.EventRecord) bool {
			return e.Event.Details["key"] == "/bin/suid" && e.Event.Change != nil && e.Event.Change.After["mode"] == "4755"
		})
		if suid.Event.Severity < model.SeverityHigh {
			t.Errorf("setuid: %+v", suid.Event)
		}
		user := check("the new user", kindKey("user", "mallory", "added"))
		if user.Event.Change == nil || user.Event.Change.After["uid"] != "0" || user.Event.Change.Before != nil {
			t.Errorf("user: %+v", user.Event.Change)
		}
		portKey := fmt.Sprintf("tcp/127.0.0.1:%d", port)
		p := check("the new listening port", kindKey("port", portKey, "added"))
		if p.Event.Change == nil || p.Event.Change.After["port"] != strconv.Itoa(port) {
			t.Errorf("port: %+v", p.Event.Change)
		}
		r, err := srv.c.CreateHostRequest(ctx, agentID, api.HostRequestCreate{Kind: api.RequestBaselineRebuild})
		if err != nil {
			t.Fatal(err)
		}
		waitRequest(t, srv, agentID, r.ID, "baseline rebuilt")
		waitFor(t, "the baseline on the server", 30*time.Second, func() bool {
			bs, err := srv.c.Baselines(ctx)
			if err != nil {
				return false
			}
			for _, b := range bs.Baselines {
				if b.Node == node && b.Baseline.Root == fim && b.Baseline.Files >= 5 && b.Baseline.ObjectKinds["user"] >= 2 {
					return true
				}
			}
			return false
		})
	})

	t.Run("appcontrol", func(t *testing.T) {
		unknown := filepath.Join(ac, "unknown")
		mustWrite(t, unknown, append(append([]byte{}, trueBin...), []byte("\x00unknown")...), 0o755)
		digest := sha256.Sum256(append(append([]byte{}, trueBin...), []byte("\x00unknown")...))
		if err := exec.Command(unknown).Run(); err != nil {
			t.Fatalf("log mode: %v", err)
		}
		srv.waitEvent(t, node, "appcontrol", "the logged execution", 30*time.Second, func(e api.EventRecord) bool {
			return e.Event.File != nil && e.Event.File.Path == unknown && e.Event.Action == "log"
		})
		// Block mode from the server.
		block := settings
		block.AppControl.Mode = "block"
		putGroup(def, block)
		waitFor(t, "the execution blocked", 30*time.Second, func() bool {
			return errors.Is(exec.Command(unknown).Run(), syscall.EPERM)
		})
		srv.waitEvent(t, node, "appcontrol", "the blocked execution", 30*time.Second, func(e api.EventRecord) bool {
			return e.Event.File != nil && e.Event.File.Path == unknown && e.Event.Action == "block"
		})
		// Added to the group's list on the server: allowed.
		srv.do(t, http.MethodPost, fmt.Sprintf("%s/%d/allowlist", api.PathHostGroups, def.ID),
			api.AllowListAdd{Entries: []api.AllowListEntry{{SHA256: hex.EncodeToString(digest[:]), Path: unknown}}}, nil)
		waitFor(t, "the execution allowed", 30*time.Second, func() bool { return exec.Command(unknown).Run() == nil })
	})

	t.Run("loginspect", func(t *testing.T) {
		time.Sleep(500 * time.Millisecond) // the follower is at the end of auth.log
		done := make(chan struct{})
		go func() { defer close(done); logtest.SudoFailures(t, holder, 2) }()
		logtest.BruteForce(t, sshPort, []string{logtest.User, logtest.User, "root", "admin", "oracle", logtest.User})
		<-done
		srv.waitEvent(t, node, "loginspect", "the SSH brute force", 60*time.Second, func(e api.EventRecord) bool { return e.Event.Rule.ID == "ssh-brute-force" })
		srv.waitEvent(t, node, "loginspect", "the sudo failure burst", 60*time.Second, func(e api.EventRecord) bool { return e.Event.Rule.ID == "sudo-auth-failures" })
		time.Sleep(3 * time.Second) // a second report would arrive by now
		count := map[string]int{}
		for _, e := range srv.events(t, node, "loginspect") {
			count[e.Event.Rule.ID]++
		}
		if count["ssh-brute-force"] != 1 || count["sudo-auth-failures"] != 1 {
			t.Errorf("detections %v, want each once", count)
		}
		waitFor(t, "the syslog collector's copies", 20*time.Second, func() bool {
			b, _ := os.ReadFile(rs.SIEMLog)
			return strings.Contains(string(b), `rule="ssh-brute-force"`) && strings.Contains(string(b), `rule="sudo-auth-failures"`)
		})
	})

	t.Run("storm", func(t *testing.T) {
		pid := agentProcess(t, a)
		_, before := memory(pid)
		stormStart := time.Now()
		dir := filepath.Join(am, "storm")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		const files, opens = 2000, 100_000
		for i := range files {
			mustWrite(t, filepath.Join(dir, strconv.Itoa(i)), []byte(fmt.Sprintf("file %d\n", i)), 0o644)
		}
		buf := make([]byte, 64)
		for i := range opens {
			f, err := os.Open(filepath.Join(dir, strconv.Itoa(i%files)))
			if err != nil {
				t.Fatal(err)
			}
			f.Read(buf)
			f.Close()
		}
		openTook := time.Since(stormStart)
		// Integrity: 5,000 files created under a watched directory at once.
		fdir := filepath.Join(fim, "etc", "storm")
		if err := os.MkdirAll(fdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := range 5000 {
			mustWrite(t, filepath.Join(fdir, strconv.Itoa(i)), nil, 0o644)
		}
		srv.waitEvent(t, node, "integrity", "a storm file reported", 60*time.Second, func(e api.EventRecord) bool {
			return e.Event.Details["key"] == "/etc/storm/4999"
		})
		rss, after := memory(pid)
		var st AntimalwareStats
		a.moduleStats(t, "antimalware", &st)
		t.Logf("storm: %d opens of %d files in %s (%.1f µs/open); then 5,000 files created under integrity watch; agent peak RSS %d -> %d KiB (now %d); listener %+v",
			opens, files, openTook.Round(time.Millisecond), float64(openTook.Microseconds())/opens, before, after, rss, st.Listener)
		if after > 400<<10 {
			t.Errorf("agent peak RSS %d KiB under the storm, want under 400 MiB", after)
		}
		if st.Listener == nil || st.Listener.Timeouts > opens/100 {
			t.Errorf("listener under the storm: %+v", st.Listener)
		}
	})

	t.Run("firewall", func(t *testing.T) {
		// A second agent, in the network namespace, in cluster fw: it takes
		// the fw cluster's group.
		var cl api.ClusterCreated
		srv.do(t, http.MethodPost, api.PathClusters, api.ClusterRequest{Name: "fw"}, &cl)
		base := api.HostSettings{PollInterval: "1s", Antimalware: api.AntimalwareSettings{Enabled: off()}, Integrity: api.IntegritySettings{Enabled: off()},
			LogInspect: api.LogInspectSettings{Enabled: off()},
			Firewall: api.FirewallSettings{Mode: "block", ConfirmTimeout: "5s", Ruleset: api.FirewallRuleset{Rules: []api.FirewallRule{
				{Name: "block-9000", Direction: "in", Action: "drop", Protocol: "tcp", DestinationPorts: []string{"9000"}}}}}}
		var fwGroup api.HostGroup
		srv.do(t, http.MethodPost, api.PathHostGroups, api.HostGroupRequest{Name: "fw-nodes", Cluster: "fw", Settings: base}, &fwGroup)
		ns.listen(t, peerAddr+":9000")
		ns.listen(t, peerAddr+":9001")
		if err := reach(peerAddr + ":9000"); err != nil {
			t.Fatalf("port 9000 before the rule: %v", err)
		}
		fwNode := "e2e-fw-" + randHex(3)
		fwAgent := startAgent(t, bin, fwNode, srv, srv.token(t, "e2e-fw", "fw"), ns, false)
		srv.waitEvent(t, fwNode, "firewall", "the ruleset applied and confirmed", 60*time.Second, func(e api.EventRecord) bool {
			return e.Event.Rule.ID == "firewall.applied" && e.Event.Cluster == "fw"
		})
		if err := reach(peerAddr + ":9000"); err == nil {
			t.Fatal("port 9000 reachable with the drop rule in force")
		}
		if err := reach(peerAddr + ":9001"); err != nil {
			t.Fatalf("port 9001 (no rule): %v", err)
		}
		// A change that cuts the agent off its server: rolled back.
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.url, "https://"))
		cut := base
		cut.Firewall.Ruleset.Rules = append(append([]api.FirewallRule{}, base.Firewall.Ruleset.Rules...),
			api.FirewallRule{Name: "cut-server", Direction: "out", Action: "drop", Protocol: "tcp", Destinations: []string{hostAddr}, DestinationPorts: []string{port}})
		changed := time.Now()
		putGroup(fwGroup, cut)
		e := srv.waitEvent(t, fwNode, "firewall", "the rollback", 90*time.Second, func(e api.EventRecord) bool { return e.Event.Rule.ID == "firewall.rolled-back" })
		t.Logf("rollback reported %s after the change (confirm timeout 5s, poll 1s)", time.Since(changed).Round(time.Millisecond))
		if !strings.Contains(e.Event.Details["cause"], "not reachable") && !strings.Contains(e.Event.Details["cause"], "deadline") {
			t.Errorf("rollback cause %q", e.Event.Details["cause"])
		}
		list := runCmd(t, "ip", "netns", "exec", ns.name, "nft", "list", "table", "inet", "mamori")
		if strings.Contains(list, "cut-server") || !strings.Contains(list, "block-9000") {
			t.Errorf("table after the rollback:\n%s", list)
		}
		if err := reach(peerAddr + ":9000"); err == nil {
			t.Error("port 9000 reachable after the rollback (the previous table is back)")
		}
		// Log mode: the drop rule lets the connection through, and the
		// packet it would have dropped is an event at the server (NFLOG),
		// with the rule, direction, protocol, addresses and port; so is an
		// outbound reject rule's.
		logSet := base
		logSet.Firewall.Mode = "log"
		logSet.Firewall.Ruleset.Rules = append(append([]api.FirewallRule{}, base.Firewall.Ruleset.Rules...),
			api.FirewallRule{Name: "no-out-9100", Direction: "out", Action: "reject", Protocol: "tcp", DestinationPorts: []string{"9100"}})
		logChanged := time.Now()
		putGroup(fwGroup, logSet)
		waitFor(t, "log mode: port 9000 reachable", 60*time.Second, func() bool { return reach(peerAddr+":9000") == nil })
		e = srv.waitEvent(t, fwNode, "firewall", "the would-drop event", 60*time.Second, func(e api.EventRecord) bool {
			return e.Event.Rule.ID == "firewall.would-drop"
		})
		n := e.Event.Network
		if e.Event.Rule.Title != "block-9000" || n == nil || n.Protocol != "tcp" || n.DstAddr != peerAddr || n.DstPort != 9000 || n.SrcAddr != hostAddr ||
			n.SrcPort == 0 || e.Event.Action != model.ActionLog || e.Event.Details["mode"] != "log" || e.Event.Details["direction"] != "inbound" ||
			e.Event.Details["rule"] != "block-9000" || e.Event.Details["inIfindex"] == "" || e.Event.Cluster != "fw" {
			t.Errorf("would-drop event: %+v %+v", e.Event, n)
		}
		t.Logf("log mode: %q at the server %s after the change", e.Event.Message, time.Since(logChanged).Round(time.Millisecond))
		// The outbound SYN to the server's host on 9100 (nothing listens
		// there: refused by the host, not by the rule in log mode).
		if err := ns.do(func() error {
			c, err := net.DialTimeout("tcp4", hostAddr+":9100", time.Second)
			if err == nil {
				c.Close()
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		e = srv.waitEvent(t, fwNode, "firewall", "the would-reject event", 30*time.Second, func(e api.EventRecord) bool {
			return e.Event.Rule.ID == "firewall.would-reject"
		})
		if n := e.Event.Network; e.Event.Rule.Title != "no-out-9100" || n == nil || n.Protocol != "tcp" || n.SrcAddr != peerAddr || n.DstAddr != hostAddr ||
			n.DstPort != 9100 || e.Event.Details["direction"] != "outbound" || e.Event.Details["outIfindex"] == "" {
			t.Errorf("would-reject event: %+v %+v", e.Event, n)
		}
		// The flow bound: more connections of the same flow within its
		// window make no further events; the agent's own events file has
		// every event it made, each of the flow's at least a window apart.
		for range 5 {
			if err := reach(peerAddr + ":9000"); err != nil {
				t.Errorf("log mode: port 9000: %v", err)
			}
		}
		time.Sleep(500 * time.Millisecond) // the kernel's batch (0.1 s) and the module
		var flowEvents []model.Event
		b, err := os.ReadFile(filepath.Join(fwAgent.dir, "events.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var ev model.Event
			if json.Unmarshal([]byte(line), &ev) == nil && ev.Rule.ID == "firewall.would-drop" && ev.Network != nil && ev.Network.DstPort == 9000 {
				flowEvents = append(flowEvents, ev)
			}
		}
		if len(flowEvents) == 0 || len(flowEvents) > 1+int(time.Since(logChanged)/(10*time.Second)) {
			t.Errorf("%d would-drop events for one flow in %s (one per 10 s window)", len(flowEvents), time.Since(logChanged).Round(time.Millisecond))
		}
		for i := 1; i < len(flowEvents); i++ {
			if d := flowEvents[i].Time.Sub(flowEvents[i-1].Time); d < 9*time.Second || flowEvents[i].Details["packetsSinceLastEvent"] == "" {
				t.Errorf("flow events %s apart (window 10 s): %+v", d, flowEvents[i])
			}
		}
		t.Logf("log mode: %d would-drop events for the flow of at least 6 connections (%s)", len(flowEvents), time.Since(logChanged).Round(time.Millisecond))
		// Block mode with log: true: the connection is dropped and the
		// dropped packet is an event.
		blockLog := base
		blockLog.Firewall.Ruleset.Rules = []api.FirewallRule{{Name: "block-9000", Direction: "in", Action: "drop", Protocol: "tcp",
			DestinationPorts: []string{"9000"}, Log: true}}
		putGroup(fwGroup, blockLog)
		waitFor(t, "block mode: port 9000 blocked", 60*time.Second, func() bool { return reach(peerAddr+":9000") != nil })
		e = srv.waitEvent(t, fwNode, "firewall", "the dropped event", 60*time.Second, func(e api.EventRecord) bool {
			return e.Event.Rule.ID == "firewall.dropped"
		})
		if n := e.Event.Network; e.Event.Rule.Title != "block-9000" || n == nil || n.Protocol != "tcp" || n.SrcAddr != hostAddr || n.DstAddr != peerAddr ||
			n.DstPort != 9000 || e.Event.Action != model.ActionBlock || e.Event.Details["mode"] != "block" || e.Event.Details["direction"] != "inbound" {
			t.Errorf("dropped event: %+v %+v", e.Event, n)
		}
		t.Logf("block mode: %q", e.Event.Message)
		// Turning the module off removes the table.
		offSet := base
		offSet.Firewall.Enabled = off()
		putGroup(fwGroup, offSet)
		waitFor(t, "the table removed", 30*time.Second, func() bool { return reach(peerAddr+":9000") == nil })
		fwAgent.stop(t)
	})

	t.Run("killed holding permission events", func(t *testing.T) {
		// An engine that never answers a scan (it answers clamd's PING, so
		// it is not left out) holds the opener: the agent is killed then.
		sock := stuckClamd(t)
		stuck := settings
		stuck.AppControl.Mode = "block"
		stuck.Antimalware.Engines.Clamd = "unix://" + sock
		stuck.Antimalware.OnAccess.Budget = "2s"
		putGroup(def, stuck)
		waitFor(t, "clamd among the engines", 30*time.Second, func() bool {
			var st AntimalwareStats
			return a.moduleStats(t, "antimalware", &st) && strings.Contains(strings.Join(st.Engines, ","), "clamav")
		})
		p := filepath.Join(am, "held.txt")
		mustWrite(t, p, []byte("an ordinary file\n"), 0o644)
		opened := make(chan error, 1)
		openStart := time.Now()
		go func() { _, err := os.ReadFile(p); opened <- err }()
		time.Sleep(300 * time.Millisecond)
		select {
		case err := <-opened:
			t.Fatalf("the open was not held: %v", err)
		default:
		}
		pid := agentProcess(t, a)
		killed := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-opened:
			t.Logf("opener released %s after the kill (%s after its open)", time.Since(killed).Round(time.Millisecond), time.Since(openStart).Round(time.Millisecond))
			if err != nil {
				t.Errorf("the held open failed: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the opener still waits 5s after the agent was killed")
		}
		// Nothing is enforced any more: the unknown binary runs.
		if err := exec.Command(filepath.Join(ac, "unknown")).Run(); err != nil {
			t.Errorf("exec after the agent died: %v", err)
		}
	})
	t.Logf("host modules e2e: %s", time.Since(begin).Round(time.Millisecond))
}

func mustWrite(t testing.TB, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func appendTo(t testing.TB, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func agentIDOf(t testing.TB, srv *testServer, node string) int64 {
	t.Helper()
	var id int64
	waitFor(t, "the agent's registration", 30*time.Second, func() bool {
		l, err := srv.c.ListAgents(context.Background())
		if err != nil {
			return false
		}
		for _, a := range l.Agents {
			if a.Node == node {
				id = a.ID
				return true
			}
		}
		return false
	})
	return id
}

// waitRequest waits until the agent reported request id done with a
// result containing want.
func waitRequest(t testing.TB, srv *testServer, agentID, id int64, want string) {
	t.Helper()
	var last api.HostRequest
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		rs, err := srv.c.HostRequests(context.Background(), agentID)
		if err == nil {
			for _, r := range rs.Requests {
				if r.ID == id {
					last = r
				}
			}
		}
		if last.State == api.RequestFailed {
			t.Fatalf("request %d (%s) failed: %s", id, last.Kind, last.Result)
		}
		if last.State == api.RequestDone {
			if !strings.Contains(last.Result, want) {
				t.Fatalf("request %d (%s): %q, want %q in it", id, last.Kind, last.Result, want)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("request %d not done within 60s: %+v", id, last)
}

// agentProcess is the agent's PID (the process itself, not `ip netns exec`).
func agentProcess(t testing.TB, a *agentProc) int { return a.pid() }

// inCgroup puts pid in a new cgroup v2 group named name (so that its
// /proc/PID/cgroup carries a container ID), undone at cleanup.
func inCgroup(t testing.TB, pid int, name string) {
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	root := ""
	for _, l := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(l)
		if len(f) > 2 && f[2] == "cgroup2" {
			root = f[1]
			break
		}
	}
	if root == "" {
		t.Skip("no cgroup v2 mount")
	}
	dir := filepath.Join(root, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, p := range strings.Fields(string(procs)) {
			_ = os.WriteFile(filepath.Join(root, "cgroup.procs"), []byte(p), 0)
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("remove cgroup %s: %v", dir, err)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatal(err)
	}
}

// stuckClamd listens on a unix socket, answers PING with PONG and every
// other command with nothing (an engine that never returns a verdict).
func stuckClamd(t testing.TB) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "clamd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 4096)
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if strings.Contains(string(buf[:n]), "PING") {
					c.Write([]byte("PONG\x00"))
					return
				}
				io.Copy(io.Discard, c) // hold the scan until the agent gives up or dies
			}()
		}
	}()
	return sock
}

// TestStandaloneDefaults runs `mamori agent --events-file F` with no other
// flag: every host module but application control starts in detect mode
// with its defaults (and the runtime module). Host-wide defaults (an
// on-access mark on "/", the firewall) stay inside a mount and network
// namespace the test makes; the agent's state directory is a tmpfs there.
// EICAR opened in the namespace is reported in F and not denied.
func TestStandaloneDefaults(t *testing.T) {
	fanotifytest.Privileged(t)
	bin := buildMamori(t, t.TempDir())
	dir := t.TempDir()
	events := filepath.Join(dir, "events.jsonl")
	eicar := filepath.Join(dir, "eicar.com")
	mustWrite(t, eicar, fanotifytest.Eicar(), 0o644)
	script := `set -e; mount --make-rprivate /; mount -t tmpfs -o size=64m mamori-e2e-state /var/lib; exec "$0" agent --events-file "$1"`
	log := &fileLog{path: filepath.Join(dir, "agent.log")}
	lf, err := os.Create(log.path)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd := exec.Command("unshare", "--mount", "--net", "--", "sh", "-c", script, bin, events)
	// A file, not a pipe: a child of the agent (journalctl) must not hold Wait.
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the agent's children too
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("the agent did not end on SIGKILL")
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", tailLines(log.String(), 80))
		}
	}()
	running := func(module, mode string) bool {
		for _, l := range strings.Split(log.String(), "\n") {
			if strings.Contains(l, "host module running") && strings.Contains(l, "module="+module) && strings.Contains(l, "mode="+mode) {
				return true
			}
		}
		return false
	}
	waitFor(t, "the host modules at their defaults", 60*time.Second, func() bool {
		return running("firewall", "log") && running("antimalware", "log") && running("integrity", "log") && running("loginspect", "log") &&
			strings.Contains(log.String(), `msg="host module off" module=appcontrol`)
	})
	// An open in the agent's namespace (its copy of the root mount is marked).
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(cmd.Process.Pid), "-m", "--", "cat", eicar).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "EICAR") {
		t.Fatalf("detect mode denied or failed the open: %v %s", err, out)
	}
	waitFor(t, "the detection in the events file", 30*time.Second, func() bool {
		b, _ := os.ReadFile(events)
		return strings.Contains(string(b), `"module":"antimalware"`) && strings.Contains(string(b), eicar) && strings.Contains(string(b), `"action":"log"`)
	})
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		if waitErr != nil {
			t.Errorf("agent exit: %v", waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop on SIGTERM")
	}
}

// fileLog reads a log file the process writes.
type fileLog struct{ path string }

func (f *fileLog) String() string {
	b, _ := os.ReadFile(f.path)
	return string(b)
}
