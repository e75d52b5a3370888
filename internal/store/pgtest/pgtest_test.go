package pgtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestStart(t *testing.T) {
	start := time.Now()
	dsn := Start(t)
	t.Logf("server and database ready in %v: %s", time.Since(start), dsn)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		t.Fatal(err)
	}
	var addr string
	if err := conn.QueryRow(ctx, "SELECT host(inet_server_addr())").Scan(&addr); err != nil {
		t.Fatal(err)
	}
	if addr != "127.0.0.1" {
		t.Errorf("server address = %s, want 127.0.0.1", addr)
	}
	t.Logf("PostgreSQL %s", v)
}

// TestSweepStale: the sweep removes the directories of dead runs only —
// never one a live test binary is still initialising (no postmaster yet).
func TestSweepStale(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	mk := func(name, owner string, age time.Duration) string {
		d := filepath.Join(tmp, tempPrefix+name)
		if err := os.MkdirAll(filepath.Join(d, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(d, ownerFile), []byte(owner+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		old := time.Now().Add(-age)
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
		return d
	}
	live := mk("live", strconv.Itoa(os.Getpid()), time.Hour)
	gone := mk("gone", strconv.Itoa(dead.Process.Pid), time.Minute)
	fresh := mk("fresh", "", time.Minute)
	stale := mk("stale", "", time.Hour)
	sweepStale()
	for d, want := range map[string]bool{live: true, gone: false, fresh: true, stale: false} {
		_, err := os.Stat(d)
		if exists := err == nil; exists != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(d), exists, want)
		}
	}
}
