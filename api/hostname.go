package api

import (
	"fmt"
	"strings"
	"text/template"
)

// HostnameContext is what a hostname template can use, with docker's
// names: {{.Service.Name}}, {{.Service.ID}}, {{.Task.Slot}}, {{.Task.ID}},
// {{.Task.Name}}, {{.Node.Hostname}}, {{.Node.ID}}.
type HostnameContext struct {
	Service struct{ ID, Name string }
	Task    struct {
		ID, Name string
		Slot     uint64
	}
	Node struct{ ID, Hostname string }
}

// NewHostnameContext fills the context for task t of service name on
// node (id, hostname).
func NewHostnameContext(t *Task, serviceName, nodeID, nodeHostname string) HostnameContext {
	var c HostnameContext
	c.Service.ID, c.Service.Name = t.ServiceID, serviceName
	c.Task.ID, c.Task.Slot = t.ID, t.Slot
	c.Task.Name = fmt.Sprintf("%s.%d.%s", serviceName, t.Slot, t.ID)
	if t.Slot == 0 {
		c.Task.Name = fmt.Sprintf("%s.%s.%s", serviceName, nodeID, t.ID)
	}
	c.Node.ID, c.Node.Hostname = nodeID, nodeHostname
	return c
}

// RenderHostname renders a hostname template; the result must be a
// hostname of at most MaxHostnameLen characters.
func RenderHostname(tmpl string, c HostnameContext) (string, error) {
	t, err := template.New("hostname").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("not a valid template: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, c); err != nil {
		return "", fmt.Errorf("template does not render: %w", err)
	}
	name := b.String()
	if err := validHostname(name); err != nil {
		return "", fmt.Errorf("renders %q: %w", name, err)
	}
	return name, nil
}

// ValidateHostnameTemplate checks a template on the server: it must parse,
// name only fields of HostnameContext, and render a valid hostname for the
// service's first slot on a node with a short name.
func ValidateHostnameTemplate(field, tmpl, service string) error {
	if err := CheckLen(field, tmpl, MaxHostnameTmpl); err != nil {
		return err
	}
	var c HostnameContext
	c.Service.ID, c.Service.Name = "svc", service
	c.Task.ID, c.Task.Name, c.Task.Slot = "task", service+".1.task", 1
	c.Node.ID, c.Node.Hostname = "node", "node"
	if _, err := RenderHostname(tmpl, c); err != nil {
		return &FieldError{Field: field, Value: tmpl, Err: err}
	}
	return nil
}

// validHostname: 1 to 63 characters of letters, digits, '-', '_' and '.'
// ('_' because stack services are named STACK_SERVICE), starting and
// ending with a letter or digit.
func validHostname(h string) error {
	switch {
	case h == "":
		return fmt.Errorf("empty hostname")
	case len(h) > MaxHostnameLen:
		return fmt.Errorf("%d characters, at most %d allowed", len(h), MaxHostnameLen)
	}
	for i, r := range h {
		if !isNameRune(r) {
			return fmt.Errorf("character %q at %d not allowed in a hostname (letters, digits, '-', '_', '.')", r, i)
		}
	}
	if !isAlnum(rune(h[0])) || !isAlnum(rune(h[len(h)-1])) {
		return fmt.Errorf("a hostname starts and ends with a letter or digit")
	}
	return nil
}
