package match

import (
	"errors"
	"os"
	"testing"
)

var errTest = errors.New("test: source failed")

func mkdirTemp() (string, error) { return os.MkdirTemp("", "mamori-match-test-") }

func TestMain(m *testing.M) {
	code := m.Run()
	if testDB != nil {
		testDB.Close()
	}
	if testDBDir != "" {
		os.RemoveAll(testDBDir)
	}
	os.Exit(code)
}
