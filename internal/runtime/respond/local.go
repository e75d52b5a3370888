package respond

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	tasksapi "github.com/containerd/containerd/api/services/tasks/v1"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"mamori/internal/model"
	"mamori/internal/runtime/container"
)

// ActionUnisolate is the Result.Action of Unisolate. It is an operator's
// action, not a rule's mitigation: it never goes into an event.
const ActionUnisolate model.Action = "unisolate"

// IsolationTable is the nftables table (family inet) Isolate adds in the
// container's network namespace; Unisolate deletes it. Nothing else in
// that namespace is touched.
const IsolationTable = "mamori_isolate"

// Defaults of the Local executor.
const (
	// DefaultKillWait is how long Terminate waits for the container to be
	// gone after SIGKILL (a SIGKILLed task exits at once; a stuck one in
	// D state is reported as not terminated).
	DefaultKillWait = 10 * time.Second
)

// Local is the executor of a plain host: nftables in the container's
// network namespace (through netlink in that namespace, entered by file
// descriptor: no thread changes namespace, nothing is run) and the
// container runtime's kill.
type Local struct {
	procRoot string
	killWait time.Duration
	ctrd     *grpc.ClientConn // nil without containerd
	docker   *http.Client     // nil without Docker
}

var _ Executor = (*Local)(nil)

// LocalOption configures a Local executor.
type LocalOption func(*Local) error

// WithContainerd sets containerd's socket (terminating containerd and
// CRI containers needs it).
func WithContainerd(address string) LocalOption {
	return func(l *Local) error {
		abs, err := filepath.Abs(strings.TrimPrefix(address, "unix://"))
		if err != nil {
			return fmt.Errorf("respond: containerd address %q: %w", address, err)
		}
		conn, err := grpc.NewClient("unix://"+abs, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("respond: containerd at %s: %w", abs, err)
		}
		l.ctrd = conn
		return nil
	}
}

// WithDocker sets dockerd's API socket (terminating Docker containers
// needs it).
func WithDocker(socket string) LocalOption {
	return func(l *Local) error {
		s := strings.TrimPrefix(socket, "unix://")
		if s == "" || strings.Contains(s, "://") {
			return fmt.Errorf("respond: docker host %q: only unix sockets are supported", socket)
		}
		l.docker = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", s)
		}}}
		return nil
	}
}

// WithProcRoot reads processes from another /proc (default "/proc").
func WithProcRoot(p string) LocalOption {
	return func(l *Local) error {
		if p == "" {
			return errors.New("respond: empty proc root")
		}
		l.procRoot = p
		return nil
	}
}

// WithKillWait sets how long Terminate waits for the container to be gone
// (default DefaultKillWait).
func WithKillWait(d time.Duration) LocalOption {
	return func(l *Local) error {
		if d <= 0 {
			return fmt.Errorf("respond: kill wait %s", d)
		}
		l.killWait = d
		return nil
	}
}

// NewLocal returns the plain-host executor.
func NewLocal(opts ...LocalOption) (*Local, error) {
	l := &Local{procRoot: "/proc", killWait: DefaultKillWait}
	for _, o := range opts {
		if err := o(l); err != nil {
			l.Close()
			return nil, err
		}
	}
	return l, nil
}

// Close releases the runtime connections.
func (l *Local) Close() error {
	if l.docker != nil {
		l.docker.CloseIdleConnections()
	}
	if l.ctrd != nil {
		return l.ctrd.Close()
	}
	return nil
}

// Name implements Executor.
func (l *Local) Name() string { return "local" }

func (l *Local) result(a model.Action, start time.Time, detail string, err error) Result {
	r := Result{Action: a, Executor: l.Name(), At: start, Took: time.Since(start), Detail: detail, Done: err == nil}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

// Isolate implements Executor: a table of mamori's own in the container's
// network namespace whose input, output and forward chains drop
// everything but loopback. Established connections are cut too (the
// chains see every packet). Containers that share the host's network
// namespace are refused: isolating them would cut the host.
func (l *Local) Isolate(ctx context.Context, t Target) Result {
	start := time.Now()
	detail, err := l.withNetNS(t, func(conn *nftables.Conn, ns uint64) (string, error) {
		if err := addIsolation(conn); err != nil {
			return "", err
		}
		n, err := countIsolationChains(conn)
		if err != nil {
			return "", err
		}
		if n != 3 {
			return "", fmt.Errorf("table inet %s has %d of its 3 chains after the change", IsolationTable, n)
		}
		return fmt.Sprintf("network cut: table inet %s (input, output, forward: drop all but loopback) in network namespace %d", IsolationTable, ns), nil
	})
	if err != nil {
		err = fmt.Errorf("isolate %s: %w", t, err)
	}
	return l.result(model.ActionIsolate, start, detail, err)
}

// Unisolate implements Executor: deletes the isolation table.
func (l *Local) Unisolate(ctx context.Context, t Target) Result {
	start := time.Now()
	detail, err := l.withNetNS(t, func(conn *nftables.Conn, ns uint64) (string, error) {
		tab, err := isolationTable(conn)
		if err != nil {
			return "", err
		}
		if tab == nil {
			return fmt.Sprintf("not isolated (no table inet %s in network namespace %d)", IsolationTable, ns), nil
		}
		conn.DelTable(tab)
		if err := conn.Flush(); err != nil {
			return "", fmt.Errorf("delete table inet %s: %w", IsolationTable, err)
		}
		return fmt.Sprintf("network restored: table inet %s deleted from network namespace %d", IsolationTable, ns), nil
	})
	if err != nil {
		err = fmt.Errorf("unisolate %s: %w", t, err)
	}
	return l.result(ActionUnisolate, start, detail, err)
}

// ErrHostNetwork says the container shares the host's network namespace.
var ErrHostNetwork = errors.New("respond: the container shares the host's network namespace")

// ErrProcessGone says the container's init process is gone or its PID is
// another process's.
var ErrProcessGone = errors.New("respond: container process gone")

// withNetNS opens the target's network namespace (checking the PID is
// still its init process, and that the namespace is not the host's) and
// calls fn with an nftables connection inside it.
func (l *Local) withNetNS(t Target, fn func(*nftables.Conn, uint64) (string, error)) (string, error) {
	if t.PID <= 0 {
		return "", fmt.Errorf("%w: no PID", ErrProcessGone)
	}
	p := container.Proc{Root: l.procRoot}
	nsPath := filepath.Join(l.procRoot, strconv.Itoa(t.PID), "ns", "net")
	fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("%w: open %s: %w", ErrProcessGone, nsPath, err)
	}
	defer unix.Close(fd)
	// Opened first, checked after: if the PID is still the process that
	// started at PIDStart, the namespace is that process's.
	if t.PIDStart != 0 {
		ticks, err := p.StartTicks(t.PID)
		if err != nil || ticks != t.PIDStart {
			return "", fmt.Errorf("%w: PID %d", ErrProcessGone, t.PID)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("stat network namespace: %w", err)
	}
	for _, host := range []string{filepath.Join(l.procRoot, "1", "ns", "net"), "/proc/self/ns/net"} {
		var hs unix.Stat_t
		if unix.Stat(host, &hs) == nil && hs.Ino == st.Ino && hs.Dev == st.Dev {
			return "", fmt.Errorf("%w (%d)", ErrHostNetwork, st.Ino)
		}
	}
	conn, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		return "", fmt.Errorf("netlink in network namespace %d: %w", st.Ino, err)
	}
	return fn(conn, st.Ino)
}

func isolationTable(conn *nftables.Conn) (*nftables.Table, error) {
	tabs, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	for _, tab := range tabs {
		if tab.Name == IsolationTable {
			return tab, nil
		}
	}
	return nil, nil
}

// isolationPriority runs the isolation chains before the usual filter
// chains (priority 0), so that another table's accept cannot be reached
// first. A drop in any base chain is final anyway.
const isolationPriority = -200

// addIsolation (re)creates the isolation table in one netlink batch:
// the kernel applies all of it or none.
func addIsolation(conn *nftables.Conn) error {
	old, err := isolationTable(conn)
	if err != nil {
		return err
	}
	if old != nil {
		conn.DelTable(old) // re-isolating replaces the table: same batch
	}
	tab := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: IsolationTable})
	drop := nftables.ChainPolicyDrop
	prio := nftables.ChainPriority(isolationPriority)
	for _, c := range []struct {
		name string
		hook *nftables.ChainHook
		meta expr.MetaKey // interface match of the loopback exception
	}{
		{"input", nftables.ChainHookInput, expr.MetaKeyIIFNAME},
		{"output", nftables.ChainHookOutput, expr.MetaKeyOIFNAME},
		{"forward", nftables.ChainHookForward, 0},
	} {
		ch := conn.AddChain(&nftables.Chain{Name: c.name, Table: tab, Type: nftables.ChainTypeFilter,
			Hooknum: c.hook, Priority: &prio, Policy: &drop})
		if c.meta == 0 {
			continue
		}
		conn.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: c.meta, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname("lo")},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}})
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("add table inet %s: %w", IsolationTable, err)
	}
	return nil
}

// countIsolationChains counts the base chains of the isolation table.
func countIsolationChains(conn *nftables.Conn) (int, error) {
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return 0, fmt.Errorf("list chains: %w", err)
	}
	n := 0
	for _, c := range chains {
		if c.Table != nil && c.Table.Name == IsolationTable && c.Policy != nil && *c.Policy == nftables.ChainPolicyDrop {
			n++
		}
	}
	return n, nil
}

// ifname is an interface name as nftables compares it (IFNAMSIZ bytes,
// NUL padded).
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// Terminate implements Executor: SIGKILL to every process of the
// container through its runtime, then a wait until the runtime reports it
// stopped.
func (l *Local) Terminate(ctx context.Context, t Target) Result {
	start := time.Now()
	var detail string
	var err error
	switch t.Runtime {
	case container.RuntimeContainerd, container.RuntimeCRI:
		detail, err = l.killContainerd(ctx, t)
	case container.RuntimeDocker:
		detail, err = l.killDocker(ctx, t)
	default:
		err = fmt.Errorf("no runtime to terminate %s with", t)
	}
	if err != nil {
		err = fmt.Errorf("terminate %s: %w", t, err)
	}
	return l.result(model.ActionTerminate, start, detail, err)
}

func (l *Local) killContainerd(ctx context.Context, t Target) (string, error) {
	if l.ctrd == nil {
		return "", errors.New("no containerd configured")
	}
	if t.Namespace == "" || t.ID == "" {
		return "", errors.New("no containerd namespace or id")
	}
	nctx := metadata.AppendToOutgoingContext(ctx, "containerd-namespace", t.Namespace)
	tasks := tasksapi.NewTasksClient(l.ctrd)
	cur, err := tasks.Get(nctx, &tasksapi.GetRequest{ContainerID: t.ID})
	switch {
	case status.Code(err) == codes.NotFound:
		return "no task (already stopped)", nil
	case err != nil:
		return "", fmt.Errorf("containerd task: %w", err)
	case cur.GetProcess().GetStatus() == tasktypes.Status_STOPPED:
		return fmt.Sprintf("already stopped (exit status %d)", cur.GetProcess().GetExitStatus()), nil
	}
	_, err = tasks.Kill(nctx, &tasksapi.KillRequest{ContainerID: t.ID, Signal: uint32(syscall.SIGKILL), All: true})
	switch status.Code(err) {
	case codes.OK:
	case codes.NotFound, codes.FailedPrecondition:
		return "no running task (already stopped)", nil
	default:
		return "", fmt.Errorf("containerd kill: %w", err)
	}
	wctx, cancel := context.WithTimeout(nctx, l.killWait)
	defer cancel()
	w, err := tasks.Wait(wctx, &tasksapi.WaitRequest{ContainerID: t.ID})
	if status.Code(err) == codes.NotFound {
		return "killed (SIGKILL); task gone", nil
	}
	if err != nil {
		return "", fmt.Errorf("SIGKILL sent, task still running after %s: %w", l.killWait, err)
	}
	return fmt.Sprintf("killed (SIGKILL); task exited with status %d", w.GetExitStatus()), nil
}

// dockerAPI is the Engine API version asked for (Docker 20.10's; served by
// every later Docker).
const dockerAPI = "/v1.41"

func (l *Local) killDocker(ctx context.Context, t Target) (string, error) {
	if l.docker == nil {
		return "", errors.New("no Docker configured")
	}
	if t.ID == "" || strings.ContainsAny(t.ID, "/?#") {
		return "", fmt.Errorf("bad Docker id %q", t.ID)
	}
	id := url.PathEscape(t.ID)
	code, body, err := l.dockerPost(ctx, "/containers/"+id+"/kill?signal=SIGKILL")
	if err != nil {
		return "", err
	}
	switch code {
	case http.StatusNoContent, http.StatusOK:
	case http.StatusConflict: // "is not running"
		return "not running (already stopped)", nil
	case http.StatusNotFound:
		return "", fmt.Errorf("docker has no container %s", t.ID)
	default:
		return "", fmt.Errorf("docker kill: %d %.200s", code, body)
	}
	wctx, cancel := context.WithTimeout(ctx, l.killWait)
	defer cancel()
	code, body, err = l.dockerPost(wctx, "/containers/"+id+"/wait?condition=not-running")
	if err != nil {
		return "", fmt.Errorf("SIGKILL sent, container still running after %s: %w", l.killWait, err)
	}
	if code != http.StatusOK {
		return "", fmt.Errorf("docker wait: %d %.200s", code, body)
	}
	var w struct{ StatusCode int }
	if err := json.Unmarshal(body, &w); err != nil {
		return "", fmt.Errorf("docker wait: %w", err)
	}
	return fmt.Sprintf("killed (SIGKILL); container exited with status %d", w.StatusCode), nil
}

func (l *Local) dockerPost(ctx context.Context, path string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://docker"+dockerAPI+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := l.docker.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("docker %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, nil, fmt.Errorf("docker %s: %w", path, err)
	}
	return resp.StatusCode, body, nil
}
