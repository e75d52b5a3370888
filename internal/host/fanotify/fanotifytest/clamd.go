package fanotifytest

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ClamdEnv makes a missing clamd a test failure instead of a skip (CI).
const ClamdEnv = "MAMORI_TEST_CLAMD"

// StartClamd starts a real clamd for the test with its own configuration,
// socket and signature database (EICAR as an .hdb entry: ClamAV ships no
// signatures here) in a temp dir, waits until it answers PING, and stops
// it when the test ends. It returns the unix socket address. It skips when
// clamd is not installed, unless MAMORI_TEST_CLAMD=1.
func StartClamd(t testing.TB) string {
	t.Helper()
	bin := "/usr/sbin/clamd"
	if _, err := os.Stat(bin); err != nil {
		p, lerr := exec.LookPath("clamd")
		if lerr != nil {
			if os.Getenv(ClamdEnv) == "1" {
				t.Fatalf("%s=1 but clamd is not installed (apt-get install clamav-daemon)", ClamdEnv)
			}
			t.Skip("clamd not installed (apt-get install clamav-daemon)")
		}
		bin = p
	}
	dir, err := os.MkdirTemp("", "mamori-host-clamd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) }) // temp dir
	db := filepath.Join(dir, "db")
	if err := os.Mkdir(db, 0o755); err != nil {
		t.Fatal(err)
	}
	e := Eicar()
	sum := md5.Sum(e)
	hdb := fmt.Sprintf("%s:%d:Eicar-Test-Signature\n", hex.EncodeToString(sum[:]), len(e))
	if err := os.WriteFile(filepath.Join(db, "mamori.hdb"), []byte(hdb), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "clamd.sock")
	conf := strings.Join([]string{
		"LocalSocket " + sock,
		"DatabaseDirectory " + db,
		"Foreground yes",
		"LogFile " + filepath.Join(dir, "clamd.log"),
		"TemporaryDirectory " + dir,
		"MaxThreads 4",
	}, "\n") + "\n"
	cfg := filepath.Join(dir, "clamd.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cfg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start clamd: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // our child
		_ = cmd.Wait()         // status is the kill
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if ping(sock) == nil {
			return "unix://" + sock
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "clamd.log")) // for the message
			t.Fatalf("clamd did not answer PING within 60s:\n%s\n%s", out.String(), log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func ping(sock string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("zPING\x00")); err != nil {
		return err
	}
	b := make([]byte, 16)
	n, err := c.Read(b)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(b[:n]), "PONG") {
		return fmt.Errorf("PING answered %q", b[:n])
	}
	return nil
}
