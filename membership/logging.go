package membership

import (
	"log/slog"
	"strings"
)

// logWriter turns memberlist's "[LEVEL] memberlist: text" lines into slog
// records. Everything goes out at debug level: memberlist warns about
// routine events (a slow ack under load, a refuted suspicion) that an
// operator does not act on, and the events that matter reach the log
// through this package's own records. The original level is kept as an
// attribute for whoever does debug.
type logWriter struct {
	log *slog.Logger
}

// Write is called once per line by the standard logger, which serialises
// calls itself.
func (w *logWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\r\n")
	level := ""
	if strings.HasPrefix(line, "[") {
		if end := strings.IndexByte(line, ']'); end > 0 {
			level = strings.ToLower(line[1:end])
			line = strings.TrimSpace(line[end+1:])
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.log.Debug(line, "memberlist_level", level)
	return len(p), nil
}
