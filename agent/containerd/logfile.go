package containerd

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// A task's log is a file of records, one per line, in the format the CRI
// uses: "<RFC 3339 time> <stream> <F|P> <text>\n". F ends a line, P is a
// piece of a line longer than maxLineBytes that the next record continues.
// When the file would grow past its limit it is renamed to <name>.1 (the
// previous one is dropped) and a new file begins.

const (
	maxLineBytes = 16 << 10
	recordTime   = "2006-01-02T15:04:05.000000000Z07:00"
	tagFull      = 'F'
	tagPartial   = 'P'
)

var errLogClosed = errors.New("log file closed")

// logFile appends records to one task's log.
type logFile struct {
	path     string
	maxBytes int64
	logger   *slog.Logger
	// dropRotated: a full file is removed instead of kept as <name>.1
	// (a service's log max-file 1).
	dropRotated bool

	mu     sync.Mutex
	f      *os.File
	size   int64
	failed bool // a write failed; reported once
}

func openLogFile(path string, maxBytes int64, logger *slog.Logger) (*logFile, error) {
	l := &logFile{path: path, maxBytes: maxBytes, logger: logger}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("open log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("open log file: %w", err)
	}
	l.f, l.size = f, st.Size()
	return nil
}

// write appends one record. A failure is logged once and the line dropped:
// a full disk must not block the container on its output.
func (l *logFile) write(stream string, partial bool, line []byte) {
	tag := byte(tagFull)
	if partial {
		tag = tagPartial
	}
	rec := make([]byte, 0, len(recordTime)+len(stream)+len(line)+5)
	rec = time.Now().UTC().AppendFormat(rec, recordTime)
	rec = append(rec, ' ')
	rec = append(rec, stream...)
	rec = append(rec, ' ', tag, ' ')
	rec = append(rec, line...)
	rec = append(rec, '\n')

	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.writeLocked(rec)
	if err != nil && !l.failed {
		l.failed = true
		l.logger.Warn("dropping container output", "log_file", l.path, "err", err)
	}
}

func (l *logFile) writeLocked(rec []byte) error {
	if l.f == nil {
		return errLogClosed
	}
	if l.size > 0 && l.size+int64(len(rec)) > l.maxBytes {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	n, err := l.f.Write(rec)
	l.size += int64(n)
	return err
}

func (l *logFile) rotate() error {
	if err := l.f.Close(); err != nil {
		l.f = nil
		return fmt.Errorf("rotate log file: %w", err)
	}
	l.f = nil
	if l.dropRotated {
		if err := os.Remove(l.path); err != nil {
			return fmt.Errorf("rotate log file: %w", err)
		}
		return l.open()
	}
	if err := os.Rename(l.path, l.path+".1"); err != nil {
		return fmt.Errorf("rotate log file: %w", err)
	}
	return l.open()
}

func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// streamWriter cuts one stream's bytes into lines for a logFile. It is
// used by a single copying goroutine.
type streamWriter struct {
	log    *logFile
	stream string
	buf    []byte
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	rest := w.buf
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		w.log.write(w.stream, false, rest[:i])
		rest = rest[i+1:]
	}
	for len(rest) >= maxLineBytes {
		w.log.write(w.stream, true, rest[:maxLineBytes])
		rest = rest[maxLineBytes:]
	}
	w.buf = append(w.buf[:0], rest...)
	return len(p), nil
}

// flush writes what is left of an unterminated last line.
func (w *streamWriter) flush() {
	if len(w.buf) > 0 {
		w.log.write(w.stream, false, w.buf)
		w.buf = w.buf[:0]
	}
}

// logPaths returns the current and the rotated log file of a task.
func logPaths(dir, taskID string) (current, rotated string) {
	current = filepath.Join(dir, taskID+".log")
	return current, current + ".1"
}
