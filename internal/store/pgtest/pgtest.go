// Package pgtest starts a real, throwaway PostgreSQL server for tests.
//
// Tests that need PostgreSQL call Start (one server per test) or, to share
// one server between the tests of a package, Launch in TestMain and
// Server.NewDatabase in each test. Both are opt-in: unless
// MAMORI_TEST_POSTGRES=1, Start skips the test. When it is set and the
// server binaries are missing, the test fails (the run asked for
// PostgreSQL): install Debian's "postgresql" package (postgresql-15 on
// bookworm).
//
// The server runs from a temporary directory (data and unix socket), listens
// on 127.0.0.1 on a free port, trusts local connections, and is stopped and
// removed on cleanup. PostgreSQL refuses to run as root: when the test runs
// as root, initdb and postgres run as the "postgres" user (created as a
// system user if missing).
package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvVar enables PostgreSQL tests when set to "1".
const EnvVar = "MAMORI_TEST_POSTGRES"

// Timeouts, with reasons.
const (
	// startTimeout covers initdb plus server start on a slow CI machine.
	startTimeout = 60 * time.Second
	// stopTimeout is how long a fast shutdown (SIGINT) may take before SIGKILL.
	stopTimeout = 15 * time.Second
	// superuser is the bootstrap superuser initdb creates.
	superuser = "mamori"
	// runAsUser is the account postgres runs as when the test runs as root.
	runAsUser = "postgres"
)

// Enabled reports whether PostgreSQL tests were asked for.
func Enabled() bool { return os.Getenv(EnvVar) == "1" }

// Server is a running throwaway PostgreSQL server.
type Server struct {
	dir     string
	port    int
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	log     *bytes.Buffer
	dbs     atomic.Int64
}

// Start starts a server for this test and returns the DSN of a fresh, empty
// database on it; the server is stopped and removed when the test ends. It
// skips the test unless MAMORI_TEST_POSTGRES=1.
func Start(t testing.TB) string {
	t.Helper()
	if !Enabled() {
		t.Skipf("PostgreSQL tests are off: set %s=1 (needs Debian's postgresql package)", EnvVar)
	}
	s, err := Launch()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s.NewDatabase(t)
}

// NewDatabase creates a fresh database on the server and returns its DSN.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := s.CreateDatabase(ctx)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// CreateDatabase creates a fresh database on the server and returns its DSN.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("test_%d", s.dbs.Add(1))
	conn, err := pgx.Connect(ctx, s.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.DSN(name), nil
}

// DSN returns the URL of database db on the server.
func (s *Server) DSN(db string) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, db)
}

// Port is the TCP port the server listens on (127.0.0.1).
func (s *Server) Port() int { return s.port }

// binDir finds the PostgreSQL server binaries: on PATH, else in Debian's
// /usr/lib/postgresql/<version>/bin (newest version first).
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
		// initdb on PATH may be a symlink beside a postgres that is elsewhere.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dir = filepath.Dir(real)
			if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
				return dir, nil
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin") // Glob's only error is a bad pattern
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH nor in /usr/lib/postgresql/*/bin: apt-get install postgresql")
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir))) // non-numeric sorts last
	return v
}

// runAs returns the credential to run PostgreSQL with: nil when not root,
// else the postgres user's (created when missing).
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(runAsUser)
	if err != nil {
		out, uerr := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", runAsUser).CombinedOutput()
		if uerr != nil {
			return nil, fmt.Errorf("running as root and no %q user: useradd: %v: %s", runAsUser, uerr, out)
		}
		if u, err = user.Lookup(runAsUser); err != nil {
			return nil, fmt.Errorf("look up %q: %w", runAsUser, err)
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("uid of %s: %w", runAsUser, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("gid of %s: %w", runAsUser, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Launch starts a server outside of any one test (for TestMain); the caller
// must Stop it. It does not look at MAMORI_TEST_POSTGRES.
func Launch() (*Server, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	sweepStale()
	dir, err := os.MkdirTemp("", tempPrefix)
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		_ = os.RemoveAll(dir) // the write error is the one to report
		return nil, fmt.Errorf("owner file: %w", err)
	}
	s := &Server{dir: dir, log: &bytes.Buffer{}, done: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(dir) // best effort: the start error is the one to report
		}
	}()
	data, sock := filepath.Join(dir, "data"), filepath.Join(dir, "sock")
	if err := os.Mkdir(sock, 0o700); err != nil {
		return nil, fmt.Errorf("socket dir: %w", err)
	}
	if cred != nil {
		for _, p := range []string{dir, sock} {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return nil, fmt.Errorf("chown %s: %w", p, err)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-U", superuser, "--auth=trust",
		"--no-locale", "--encoding=UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	// A free port can be taken between choosing and binding: try a few.
	for attempt := 0; attempt < 3; attempt++ {
		if s.port, err = freePort(); err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		if err = s.start(ctx, bin, data, sock, cred); err == nil {
			ok = true
			return s, nil
		}
	}
	return nil, err
}

func (s *Server) start(ctx context.Context, bin, data, sock string, cred *syscall.Credential) error {
	s.log.Reset()
	s.done = make(chan struct{})
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-p", strconv.Itoa(s.port), "-k", sock,
		"-c", "listen_addresses=127.0.0.1", "-c", "max_connections=200", "-c", "shared_buffers=128MB")
	// Pdeathsig: a test binary killed with -9 (a crash test's child, a
	// timeout) must not leave its server running. Go applies it after the
	// credential change, which would otherwise clear it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd = cmd
	go func() {
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	for {
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited: %v: %s", s.waitErr, strings.TrimSpace(s.log.String()))
		case <-ctx.Done():
			_ = s.kill() // start failed already; report that
			return fmt.Errorf("postgres did not accept connections within %v: %s", startTimeout, s.log.String())
		case <-time.After(100 * time.Millisecond):
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		conn, err := pgx.Connect(cctx, s.DSN("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(context.Background()) // a probe connection
			return nil
		}
	}
}

func (s *Server) kill() error {
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL) // may have exited already
	<-s.done
	return nil
}

// tempPrefix names the servers' temporary directories, so that sweepStale
// can find those of earlier runs; ownerFile in each holds the PID of the
// test binary that made it.
const (
	tempPrefix = "mamori-pgtest-"
	ownerFile  = "owner.pid"
)

// sweepStale removes the directories of servers from earlier runs whose
// test binary died before Stop (kill -9, a panic in TestMain): their
// postmaster is gone, or is killed here when its recorded process is a
// postgres whose parent is dead.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), tempPrefix+"*")) // only error: bad pattern
	for _, d := range dirs {
		// A directory whose owning test binary is alive is in use, even
		// before its postmaster exists (initdb is writing it). Without an
		// owner file (an older run), a recent directory is left alone.
		if owner := postmasterPID(filepath.Join(d, ownerFile)); owner > 0 && alive(owner) {
			continue
		} else if owner == 0 {
			if st, err := os.Stat(d); err != nil || time.Since(st.ModTime()) < 10*time.Minute {
				continue
			}
		}
		pid := postmasterPID(filepath.Join(d, "data", "postmaster.pid"))
		if pid > 0 && alive(pid) {
			if !orphanPostgres(pid) {
				continue // a running test's server
			}
			_ = syscall.Kill(pid, syscall.SIGKILL) // an orphan of a dead test binary
			for i := 0; i < 50 && alive(pid); i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
		_ = os.RemoveAll(d) // best effort: a leftover we could not remove is not this run's problem
	}
}

// postmasterPID reads the first line of postmaster.pid; 0 when absent.
func postmasterPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return 0
	}
	return pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// orphanPostgres reports whether pid is a postgres process re-parented to
// init (its test binary is gone).
func orphanPostgres(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || end+2 > len(s) {
		return false
	}
	fields := strings.Fields(s[end+2:])
	return s[open+1:end] == "postgres" && len(fields) > 1 && fields[1] == "1"
}

// Stop shuts the server down (fast shutdown, then SIGKILL after a timeout)
// and removes its directory.
func (s *Server) Stop() error {
	var errs []error
	if s.cmd != nil && s.cmd.Process != nil {
		select {
		case <-s.done:
		default:
			// SIGINT = PostgreSQL's "fast" shutdown: disconnect clients, checkpoint, exit.
			if err := s.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
				errs = append(errs, fmt.Errorf("signal postgres: %w", err))
			}
			select {
			case <-s.done:
			case <-time.After(stopTimeout):
				errs = append(errs, fmt.Errorf("postgres did not stop within %v; killed", stopTimeout))
				_ = s.kill() // already reporting the timeout
			}
		}
	}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", s.dir, err))
	}
	return errors.Join(errs...)
}
