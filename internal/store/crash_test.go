package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// crashChildEnv carries the DSN to the child process of TestKillDuringIngest.
const crashChildEnv = "MAMORI_STORE_CRASH_DSN"

// TestCrashChild is the child of TestKillDuringIngest: it ingests images in a
// loop and prints "ACK <scanID>" after each acknowledged (returned) ingest,
// until it is killed.
func TestCrashChild(t *testing.T) {
	dsn := os.Getenv(crashChildEnv)
	if dsn == "" {
		t.Skip("child process of TestKillDuringIngest")
	}
	ctx := context.Background()
	st, err := Open(ctx, dsn, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	start, pauseAfter := 0, 0
	if v := os.Getenv(crashChildEnv + "_START"); v != "" {
		fmt.Sscan(v, &start)
	}
	if v := os.Getenv(crashChildEnv + "_PAUSE_AFTER"); v != "" {
		fmt.Sscan(v, &pauseAfter)
	}
	pauseAt := os.Getenv(crashChildEnv + "_PAUSE_AT")
	acks := 0
	// After pauseAfter acknowledged ingests, the next one stops inside its
	// transaction at step pauseAt and says so: the parent kills it there.
	st.(*sqlStore).failAt = func(step string) error {
		if acks == pauseAfter && step == pauseAt {
			fmt.Println("MID", step)
			time.Sleep(time.Minute)
		}
		return nil
	}
	for n := start; ; n++ {
		r := loadResult(n)
		if _, err := st.IngestScan(ctx, r); err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		fmt.Println("ACK", r.ScanID) // unbuffered: printed only after the commit returned
		acks++
	}
}

// TestKillDuringIngest (issue 5 must-show): kill -9 of the process during an
// ingest loses nothing that was acknowledged, leaves nothing half-written,
// and a retried ingest creates no duplicates.
func TestKillDuringIngest(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("in the child")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	engines(t, func(t *testing.T, s *sqlStore) {
		ctx := context.Background()
		var dsn string
		if s.engine == EngineSQLite {
			// The child opens the same file; this store is only used after the kill.
			var file string
			if err := s.db.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
				t.Fatal(err)
			}
			dsn = file
		} else {
			var db string
			if err := s.db.QueryRowContext(ctx, `SELECT current_database()`).Scan(&db); err != nil {
				t.Fatal(err)
			}
			dsn = pgServer.DSN(db)
		}
		acked := map[string]bool{}
		next := 0
		steps := []string{"packages", "vulnerabilities", "image-update", "commit"}
		for round, step := range steps {
			cmd := exec.Command(exe, "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+dsn, fmt.Sprintf("%s_START=%d", crashChildEnv, next),
				fmt.Sprintf("%s_PAUSE_AFTER=%d", crashChildEnv, 3+round), crashChildEnv+"_PAUSE_AT="+step)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(out)
			n := 0
			for lines.Scan() {
				l := lines.Text()
				if id, ok := strings.CutPrefix(l, "ACK "); ok {
					acked[id] = true
					n++
				} else if strings.HasPrefix(l, "MID ") {
					// In the middle of the next ingest's transaction.
					if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
						t.Fatal(err)
					}
					break
				} else if strings.HasPrefix(l, "ERR") {
					t.Fatalf("child: %s", l)
				}
			}
			_, _ = io.Copy(io.Discard, out) // drain what was printed before the kill
			werr := cmd.Wait()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die by SIGKILL: %v", werr)
			}
			// Acknowledged scans are all there, complete.
			scans, err := s.ListScans(ctx, ScanFilter{Page: Page{Limit: MaxLimit}})
			if err != nil {
				t.Fatal(err)
			}
			stored := map[string]bool{}
			for _, sc := range scans.Scans {
				stored[sc.ScanID] = true
			}
			for id := range acked {
				if !stored[id] {
					t.Fatalf("round %d: acknowledged scan %s lost", round, id)
				}
			}
			imgs, err := s.ListImages(ctx, ImageFilter{Page: Page{Limit: MaxLimit}})
			if err != nil {
				t.Fatal(err)
			}
			for _, im := range imgs.Images {
				vs, err := s.ListImageVulnerabilities(ctx, im.ID)
				if err != nil {
					t.Fatal(err)
				}
				d, err := s.GetImage(ctx, im.ID)
				if err != nil {
					t.Fatal(err)
				}
				if len(vs) != loadVulnsPerImg || im.Vulnerabilities.Total() != loadVulnsPerImg || len(d.Packages) != im.PackageCount {
					t.Fatalf("image %s half-written: %d rows, counts %+v, %d/%d packages", im.Name, len(vs), im.Vulnerabilities, len(d.Packages), im.PackageCount)
				}
			}
			checkAggregates(t, s)
			if len(stored) != len(acked) {
				t.Fatalf("round %d: %d stored, %d acknowledged: the killed transaction left a scan", round, len(stored), len(acked))
			}
			t.Logf("round %d: killed at %q: %d acknowledged, %d stored", round, step, len(acked), len(stored))

			// The client retries what it did not see acknowledged, and everything again: no duplicates.
			for i := 0; i < next+n+1; i++ {
				out, err := s.IngestScan(ctx, loadResult(i))
				if err != nil {
					t.Fatal(err)
				}
				if acked[loadResult(i).ScanID] && out.Status != IngestDuplicate {
					t.Fatalf("retry of acknowledged %d = %s", i, out.Status)
				}
				acked[loadResult(i).ScanID] = true
			}
			next += n + 1
			scans, _ = s.ListScans(ctx, ScanFilter{})
			if scans.Total != next {
				t.Fatalf("after retries: %d scans, want %d", scans.Total, next)
			}
		}
	})
}
