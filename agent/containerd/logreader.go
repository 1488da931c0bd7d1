package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/shoal-sched/shoal/agent"
)

// followPoll is how often a followed log is checked for new records.
const followPoll = 100 * time.Millisecond

// maxJoinedLine bounds a line rebuilt from partial records.
const maxJoinedLine = 1 << 20

// logLine is one line of container output.
type logLine struct {
	stream string
	at     time.Time
	text   []byte
}

// parseRecord reads "<time> <stream> <F|P> <text>" (without the newline).
func parseRecord(b []byte) (at time.Time, stream string, partial bool, text []byte, ok bool) {
	ts, rest, found := bytes.Cut(b, []byte{' '})
	if !found {
		return at, "", false, nil, false
	}
	st, rest, found := bytes.Cut(rest, []byte{' '})
	if !found || len(rest) < 2 || rest[1] != ' ' || (rest[0] != tagFull && rest[0] != tagPartial) {
		return at, "", false, nil, false
	}
	at, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return at, "", false, nil, false
	}
	return at, string(st), rest[0] == tagPartial, rest[2:], true
}

// lineReader turns records into lines, joining partial records. Records it
// cannot parse (a torn write after a crash) are skipped.
type lineReader struct {
	pending []byte   // bytes after the last newline seen
	joined  *logLine // a line being rebuilt from partial records
	emit    func(logLine) error
}

func (r *lineReader) feed(b []byte) error {
	r.pending = append(r.pending, b...)
	rest := r.pending
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		if err := r.record(rest[:i]); err != nil {
			return err
		}
		rest = rest[i+1:]
	}
	r.pending = append(r.pending[:0], rest...)
	return nil
}

func (r *lineReader) record(b []byte) error {
	at, stream, partial, text, ok := parseRecord(b)
	if !ok {
		return nil
	}
	if r.joined != nil && r.joined.stream != stream {
		// The other stream's piece was cut off (rotation, crash): keep
		// what there is as its own line.
		if err := r.flush(); err != nil {
			return err
		}
	}
	if r.joined == nil {
		r.joined = &logLine{stream: stream, at: at}
	}
	r.joined.text = append(r.joined.text, text...)
	if partial && len(r.joined.text) < maxJoinedLine {
		return nil
	}
	return r.flush()
}

func (r *lineReader) flush() error {
	if r.joined == nil {
		return nil
	}
	l := *r.joined
	r.joined = nil
	return r.emit(l)
}

// readLogs writes a task's log lines to w: the last opts.Tail lines (all if
// negative) and then, with opts.Follow, new lines until ctx ends.
func readLogs(ctx context.Context, current, rotated string, opts agent.LogOptions, w agent.LogWriter) error {
	// Open the current file before reading the rotated one so that a
	// rotation in between repeats lines rather than losing them.
	f, err := os.Open(current)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read log: %w", err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var lines []logLine
	collect := &lineReader{emit: func(l logLine) error {
		lines = append(lines, l)
		if opts.Tail >= 0 && int64(len(lines)) > 2*opts.Tail+64 {
			lines = append(lines[:0], lines[int64(len(lines))-opts.Tail:]...)
		}
		return nil
	}}
	if err := feedFile(collect, rotated); err != nil {
		return err
	}
	if f != nil {
		if err := feedReader(collect, f); err != nil {
			return err
		}
	}
	if !opts.Follow {
		if err := collect.flush(); err != nil {
			return err
		}
	}
	if opts.Tail >= 0 && int64(len(lines)) > opts.Tail {
		lines = lines[int64(len(lines))-opts.Tail:]
	}
	for _, l := range lines {
		if err := w.WriteLine(l.stream, l.at, l.text); err != nil {
			return err
		}
	}
	if !opts.Follow {
		return nil
	}
	// Whatever is pending carries over into the live part.
	collect.emit = func(l logLine) error { return w.WriteLine(l.stream, l.at, l.text) }
	return follow(ctx, current, f, collect)
}

func feedFile(r *lineReader, path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read log: %w", err)
	}
	defer f.Close()
	return feedReader(r, f)
}

func feedReader(r *lineReader, f io.Reader) error {
	buf := make([]byte, 64<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			if ferr := r.feed(buf[:n]); ferr != nil {
				return ferr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
	}
}

// follow polls the log for new records until ctx ends, moving to the new
// file when the current one is rotated away. f may be nil if the log does
// not exist yet. It returns nil when ctx ends: that is how following stops.
func follow(ctx context.Context, path string, f *os.File, r *lineReader) error {
	tick := time.NewTicker(followPoll)
	defer tick.Stop()
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		if f != nil {
			if err := feedReader(r, f); err != nil {
				return err
			}
		}
		next, err := reopenIfRotated(path, f)
		if err != nil {
			return err
		}
		if next != f {
			if f != nil {
				// Drain what was written before the rotation.
				if err := feedReader(r, f); err != nil {
					return err
				}
				f.Close()
			}
			f = next
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// reopenIfRotated returns a new handle when the file at path is not the
// one f has open (or f is nil and the file now exists), else f.
func reopenIfRotated(path string, f *os.File) (*os.File, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("follow log: %w", err)
	}
	if f != nil {
		cur, err := f.Stat()
		if err != nil {
			return nil, fmt.Errorf("follow log: %w", err)
		}
		if os.SameFile(st, cur) {
			return f, nil
		}
	}
	next, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("follow log: %w", err)
	}
	return next, nil
}
