package containerd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoal-sched/shoal/agent"
)

func newTestLog(t *testing.T, maxBytes int64) (*logFile, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "task.log")
	lf, err := openLogFile(path, maxBytes, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lf.Close() })
	return lf, path
}

func readAll(t *testing.T, path string, tail int64) []string {
	t.Helper()
	var l lines
	if err := readLogs(t.Context(), path, path+".1", agent.LogOptions{Tail: tail}, &l); err != nil {
		t.Fatal(err)
	}
	return l.snapshot()
}

func TestStreamWriterLines(t *testing.T) {
	long := strings.Repeat("x", maxLineBytes*2+5)
	cases := []struct {
		name   string
		writes []string
		want   []string
	}{
		{"one line per write", []string{"a\n", "b\n"}, []string{"stdout: a", "stdout: b"}},
		{"lines split across writes", []string{"he", "llo\nwor", "ld\n"}, []string{"stdout: hello", "stdout: world"}},
		{"several lines in one write", []string{"1\n2\n3\n"}, []string{"stdout: 1", "stdout: 2", "stdout: 3"}},
		{"empty line", []string{"\n"}, []string{"stdout: "}},
		{"unterminated last line is flushed", []string{"a\nb"}, []string{"stdout: a", "stdout: b"}},
		{"long line joined back", []string{long[:100], long[100:] + "\n"}, []string{"stdout: " + long}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lf, path := newTestLog(t, 1<<30)
			w := &streamWriter{log: lf, stream: "stdout"}
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
					t.Fatalf("write = %d, %v", n, err)
				}
			}
			w.flush()
			if got := readAll(t, path, -1); !slices.Equal(got, tc.want) {
				t.Fatalf("got %.300q, want %.300q", got, tc.want)
			}
		})
	}
}

func TestLogRotation(t *testing.T) {
	lf, path := newTestLog(t, 1000)
	w := &streamWriter{log: lf, stream: "stderr"}
	for i := 1; i <= 100; i++ {
		fmt.Fprintf(w, "message %d\n", i)
	}
	got := readAll(t, path, -1)
	if len(got) == 0 || len(got) >= 100 || got[len(got)-1] != "stderr: message 100" {
		t.Fatalf("after rotation got %d lines ending %q", len(got), got[len(got)-1:])
	}
	for i, l := range got {
		if want := fmt.Sprintf("stderr: message %d", 100-len(got)+1+i); l != want {
			t.Fatalf("line %d = %q, want %q", i, l, want)
		}
	}
	for _, p := range []string{path, path + ".1"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > 1000 {
			t.Fatalf("%s has %d bytes, over the limit", p, st.Size())
		}
	}
	if got := readAll(t, path, 2); !slices.Equal(got, []string{"stderr: message 99", "stderr: message 100"}) {
		t.Fatalf("tail 2 = %q", got)
	}
}

func TestParseRecordRejectsTornRecords(t *testing.T) {
	ts := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC).Format(recordTime)
	cases := []struct {
		rec  string
		ok   bool
		text string
	}{
		{ts + " stdout F hello world", true, "hello world"},
		{ts + " stderr P piece", true, "piece"},
		{ts + " stdout F ", true, ""},
		{ts + " stdout X hello", false, ""},
		{ts + " stdout", false, ""},
		{"2025-01-02T03:04 stdout F x", false, ""},
		{"", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.rec, func(t *testing.T) {
			_, _, _, text, ok := parseRecord([]byte(tc.rec))
			if ok != tc.ok || string(text) != tc.text {
				t.Fatalf("parse = %q, %v; want %q, %v", text, ok, tc.text, tc.ok)
			}
		})
	}
	// A torn record among good ones is skipped, the rest is read.
	path := filepath.Join(t.TempDir(), "task.log")
	content := ts + " stdout F one\n" + ts[:10] + "\n" + ts + " stdout F two\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, path, -1); !slices.Equal(got, []string{"stdout: one", "stdout: two"}) {
		t.Fatalf("got %q", got)
	}
}

func TestFollowWaitsForTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "task.log")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var got lines
	done := make(chan error, 1)
	go func() {
		done <- readLogs(ctx, path, path+".1", agent.LogOptions{Tail: -1, Follow: true}, &got)
	}()
	lf, err := openLogFile(path, 300, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	w := &streamWriter{log: lf, stream: "stdout"}
	var want []string
	for i := range 20 {
		fmt.Fprintf(w, "n%d\n", i)
		want = append(want, fmt.Sprintf("stdout: n%d", i))
		// Rotation happens about every five lines; let the follower see
		// each file before the next rotation drops it.
		n := len(want)
		eventually(t, 10*time.Second, "followed line", func() bool { return len(got.snapshot()) >= n })
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if g := got.snapshot(); !slices.Equal(g, want) {
		t.Fatalf("got %q, want %q", g, want)
	}
}
