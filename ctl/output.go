package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"
)

// jsonOptions fix the JSON shape documented in docs/cli-json.md: proto field
// names, and every field present even when empty, so scripts can rely on
// the keys.
var jsonOptions = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// writeMsg prints one message as JSON or YAML, as --output says.
func (g *globals) writeMsg(m proto.Message) error {
	b, err := jsonOptions.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %T as JSON: %w", m, err)
	}
	return g.writeEncoded(b)
}

// writeMsgList prints messages as one array, as docker's inspect does. A
// list command prints its objects this way, not the response they came in:
// the envelope's paging fields (next_page_token) are the client's business,
// and every list reads the same to a script.
func writeMsgList[M proto.Message](g *globals, ms []M) error {
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, m := range ms {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, err := jsonOptions.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode %T as JSON: %w", m, err)
		}
		buf.Write(b)
	}
	buf.WriteByte(']')
	return g.writeEncoded(buf.Bytes())
}

// writeValue prints a value with encoding/json (or as YAML), for the
// outputs that are not proto messages.
func (g *globals) writeValue(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	return g.writeEncoded(b)
}

// writeEncoded prints JSON bytes indented, or the same document as YAML.
// YAML is made from the JSON, so both formats carry the same keys in the
// same order and the same values (64-bit numbers stay strings).
func (g *globals) writeEncoded(b []byte) error {
	if g.output == outputYAML {
		return writeYAML(g.app.Out, b)
	}
	return writeIndented(g.app.Out, b)
}

// writeIndented re-indents JSON: protojson varies its whitespace on
// purpose, and re-indenting makes the output byte-stable.
func writeIndented(w io.Writer, b []byte) error {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return fmt.Errorf("indent JSON: %w", err)
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// writeYAML converts a JSON document to block-style YAML. JSON is YAML, so
// the parser keeps its key order and the tags of its scalars; only the
// flow style is dropped.
func writeYAML(w io.Writer, b []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return fmt.Errorf("convert JSON to YAML: %w", err)
	}
	blockStyle(&doc)
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("encode YAML: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("encode YAML: %w", err)
	}
	_, err := w.Write(out.Bytes())
	return err
}

// blockStyle clears the JSON flow and quoting styles so the encoder writes
// block YAML; a string that would read as another type (like "3") is
// still quoted, because its tag says !!str.
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// table writes aligned columns the way docker does (three spaces apart),
// without the padding tabwriter leaves after an empty last cell.
type table struct {
	w      io.Writer
	buf    bytes.Buffer
	tw     *tabwriter.Writer
	format *formatTable // set with --format
}

func newTable(w io.Writer, header ...string) *table {
	t := &table{w: w}
	if fw, ok := w.(*formatWriter); ok {
		// --format: the table's columns become the template's fields.
		t.format = &formatTable{fw: fw}
		for _, h := range header {
			t.format.keys = append(t.format.keys, formatKey(h))
		}
		return t
	}
	t.tw = tabwriter.NewWriter(&t.buf, 0, 8, 3, ' ', 0)
	t.row(header...)
	return t
}

func (t *table) row(cells ...string) {
	if t.format != nil {
		t.format.row(cells...)
		return
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error {
	if t.format != nil {
		return t.format.flush()
	}
	if err := t.tw.Flush(); err != nil {
		return err
	}
	var out bytes.Buffer
	for line := range strings.Lines(t.buf.String()) {
		out.WriteString(strings.TrimRight(line, " \n"))
		out.WriteByte('\n')
	}
	t.buf.Reset()
	_, err := t.w.Write(out.Bytes())
	return err
}

// shortIDLen is how much of an ID tables show unless --no-trunc is given.
const shortIDLen = 12

func shortID(id string, noTrunc bool) string {
	if noTrunc || len(id) <= shortIDLen {
		return id
	}
	return id[:shortIDLen]
}

// title upper-cases the first letter: "running" -> "Running".
func title(s string) string {
	for i, r := range s {
		return string(unicode.ToUpper(r)) + s[i+len(string(r)):]
	}
	return s
}

// humanDuration writes d the way docker's `ps` does ("2 minutes",
// "About an hour").
func humanDuration(d time.Duration) string {
	seconds := int(d.Seconds())
	switch {
	case seconds < 1:
		return "Less than a second"
	case seconds == 1:
		return "1 second"
	case seconds < 60:
		return fmt.Sprintf("%d seconds", seconds)
	}
	minutes := int(d.Minutes())
	switch {
	case minutes == 1:
		return "About a minute"
	case minutes < 60:
		return fmt.Sprintf("%d minutes", minutes)
	}
	hours := int(d.Hours() + 0.5)
	switch {
	case hours == 1:
		return "About an hour"
	case hours < 48:
		return fmt.Sprintf("%d hours", hours)
	case hours < 24*7*2:
		return fmt.Sprintf("%d days", hours/24)
	case hours < 24*30*2:
		return fmt.Sprintf("%d weeks", hours/24/7)
	case hours < 24*365*2:
		return fmt.Sprintf("%d months", hours/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// ago writes how long before now t was, or "" for a zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return humanDuration(now.Sub(t)) + " ago"
}
