package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-sched/shoal/api"
)

// --format takes a Go template as docker's does: list rows have the
// table's columns as fields named after their headers ("DESIRED STATE" is
// {{.DesiredState}}, "ID" {{.ID}}), inspect has the object with its JSON
// keys in Go's spelling ({{.Spec.Name}}, {{.ID}}, {{.SpecVersion}}).
// "table TEMPLATE" prints a header row and aligns the columns; {{json .}}
// prints a value as JSON; --format json is {{json .}}.

// formatWriter carries a --format template to newTable with the output.
type formatWriter struct {
	io.Writer
	tmpl *template.Template
	// table: the template began with "table": print headers, align.
	table bool
}

// parseFormat compiles a --format value; "" gives nil.
func parseFormat(format string) (*formatWriter, error) {
	if format == "" {
		return nil, nil
	}
	fw := &formatWriter{}
	text := format
	if rest, ok := strings.CutPrefix(format, "table"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		fw.table, text = true, strings.TrimSpace(rest)
	}
	if text == "json" {
		text = "{{json .}}"
	}
	text = strings.ReplaceAll(text, `\t`, "\t")
	t, err := template.New("format").Funcs(formatFuncs).Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, &api.FieldError{Field: "--format", Value: format, Err: fmt.Errorf("not a valid template: %w", err)}
	}
	fw.tmpl = t
	return fw, nil
}

var formatFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"upper": strings.ToUpper, "lower": strings.ToLower, "title": title,
	"join": strings.Join, "split": strings.Split,
}

// out returns w, or w carrying the --format template.
func (r *readFlags) out(w io.Writer) (io.Writer, error) {
	fw, err := parseFormat(r.format)
	if err != nil || fw == nil {
		return w, err
	}
	fw.Writer = w
	return fw, nil
}

// formatKey is docker's field name for a column header.
func formatKey(header string) string {
	var b strings.Builder
	for _, word := range strings.Fields(header) {
		if word == "ID" {
			b.WriteString("ID")
			continue
		}
		b.WriteString(title(strings.ToLower(word)))
	}
	return b.String()
}

// formatTable collects rows for a --format template.
type formatTable struct {
	fw   *formatWriter
	keys []string
	rows []map[string]string
}

func (f *formatTable) row(cells ...string) {
	m := make(map[string]string, len(f.keys))
	for i, k := range f.keys {
		if i < len(cells) {
			m[k] = cells[i]
		}
	}
	f.rows = append(f.rows, m)
}

func (f *formatTable) flush() error {
	var buf bytes.Buffer
	var out io.Writer = &buf
	var tw *tabwriter.Writer
	if f.fw.table {
		tw = tabwriter.NewWriter(&buf, 0, 8, 3, ' ', 0)
		out = tw
		header := map[string]string{}
		for _, k := range f.keys {
			header[k] = headerOf(k)
		}
		if err := executeLine(out, f.fw.tmpl, header); err != nil {
			return err
		}
	}
	for _, r := range f.rows {
		if err := executeLine(out, f.fw.tmpl, r); err != nil {
			return err
		}
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := f.fw.Writer.Write(buf.Bytes())
	return err
}

// headerOf turns a field name back into its header: DesiredState ->
// DESIRED STATE.
func headerOf(key string) string {
	if key == "ID" {
		return key
	}
	var b strings.Builder
	for i, r := range key {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	return strings.ToUpper(b.String())
}

func executeLine(w io.Writer, t *template.Template, data any) error {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return &api.FieldError{Field: "--format", Value: t.Root.String(), Err: err}
	}
	_, err := fmt.Fprintln(w, b.String())
	return err
}

// formatMessages prints each inspected message through the template.
func formatMessages[M proto.Message](w io.Writer, fw *formatWriter, ms []M) error {
	var errs []error
	for _, m := range ms {
		b, err := jsonOptions.Marshal(m)
		if err != nil {
			return err
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		errs = append(errs, executeLine(w, fw.tmpl, goKeys(v)))
	}
	return errors.Join(errs...)
}

// goKeys renames JSON keys to Go's spelling: spec_version -> SpecVersion,
// id -> ID, node_id -> NodeID.
func goKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			if userKeys[k] {
				out[goName(k)] = val // the user's own keys stay as they are
				continue
			}
			out[goName(k)] = goKeys(val)
		}
		return out
	case []any:
		for i := range x {
			x[i] = goKeys(x[i])
		}
		return x
	}
	return v
}

// userKeys are the maps whose keys are the user's (labels, sysctls).
var userKeys = map[string]bool{"labels": true, "sysctls": true}

func goName(key string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(key, "_") {
		switch part {
		case "id":
			b.WriteString("ID")
		case "":
		default:
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}
