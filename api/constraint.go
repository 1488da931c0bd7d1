package api

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ErrInvalidPlacement is wrapped by every error ParseConstraint and
// ParsePreference return, so the control API can answer "invalid argument"
// without matching message text.
var ErrInvalidPlacement = errors.New("invalid placement")

// ConstraintField is the node attribute a constraint tests.
type ConstraintField string

const (
	FieldNodeID       ConstraintField = "node.id"
	FieldNodeHostname ConstraintField = "node.hostname"
	FieldNodeRole     ConstraintField = "node.role"
	// FieldNodeLabel is node.labels.KEY; the KEY is in Constraint.Label.
	FieldNodeLabel ConstraintField = "node.labels"
)

// ConstraintOp is how a constraint compares the field with its value.
type ConstraintOp string

const (
	OpEqual    ConstraintOp = "=="
	OpNotEqual ConstraintOp = "!="
)

const labelPrefix = "node.labels."

// Constraint is one parsed placement constraint, like "node.labels.zone==a"
// or "node.role!=manager".
//
// Values compare case-insensitively (as Swarm does). A node without the
// label has the empty value, so "node.labels.ssd!=true" matches it and
// "node.labels.ssd==true" does not.
type Constraint struct {
	Field ConstraintField
	// Label is the label key of a node.labels constraint (case-sensitive).
	Label string
	Op    ConstraintOp
	Value string
}

// ParseConstraint reads "FIELD==VALUE" or "FIELD!=VALUE" where FIELD is
// node.id, node.hostname, node.role or node.labels.KEY. Spaces around the
// field, the operator and the value are ignored.
func ParseConstraint(s string) (Constraint, error) {
	fail := func(format string, args ...any) (Constraint, error) {
		return Constraint{}, fmt.Errorf("%w constraint %q: %s", ErrInvalidPlacement, s, fmt.Sprintf(format, args...))
	}
	i, op := findOp(s)
	if i < 0 {
		return fail("no operator: want FIELD==VALUE or FIELD!=VALUE, e.g. node.labels.zone==a")
	}
	left := strings.TrimSpace(s[:i])
	value := strings.TrimSpace(s[i+len(op):])
	c := Constraint{Op: op, Value: value}

	switch {
	case left == "":
		return fail("missing field before %s", op)
	case strings.EqualFold(left, string(FieldNodeID)):
		c.Field = FieldNodeID
	case strings.EqualFold(left, string(FieldNodeHostname)):
		c.Field = FieldNodeHostname
	case strings.EqualFold(left, string(FieldNodeRole)):
		c.Field = FieldNodeRole
	case hasLabelPrefix(left):
		c.Field = FieldNodeLabel
		c.Label = left[len(labelPrefix):]
		if c.Label == "" {
			return fail("missing label key after %s", labelPrefix)
		}
		if r, bad := badRune(c.Label, " =!"); bad {
			return fail("label key %q contains %q", c.Label, r)
		}
	default:
		return fail("unknown field %q: want node.id, node.hostname, node.role or node.labels.KEY", left)
	}

	if value == "" {
		return fail("missing value after %s", op)
	}
	if r, bad := badRune(value, "=!"); bad {
		return fail("value %q contains %q", value, r)
	}
	if c.Field == FieldNodeRole {
		switch {
		case strings.EqualFold(value, string(RoleManager)):
			c.Value = string(RoleManager)
		case strings.EqualFold(value, string(RoleWorker)):
			c.Value = string(RoleWorker)
		default:
			return fail("role %q: want %s or %s", value, RoleManager, RoleWorker)
		}
	}
	return c, nil
}

// hasLabelPrefix reports whether s starts with node.labels. in any case.
func hasLabelPrefix(s string) bool {
	return len(s) >= len(labelPrefix) && strings.EqualFold(s[:len(labelPrefix)], labelPrefix)
}

// findOp returns the position and kind of the first "==" or "!=" in s.
func findOp(s string) (int, ConstraintOp) {
	eq, ne := strings.Index(s, string(OpEqual)), strings.Index(s, string(OpNotEqual))
	switch {
	case eq < 0 && ne < 0:
		return -1, ""
	case eq < 0 || (ne >= 0 && ne < eq):
		return ne, OpNotEqual
	default:
		return eq, OpEqual
	}
}

// badRune reports the first control character or character of extra in s.
// Spaces are allowed inside values (labels may hold them) unless extra
// names the space.
func badRune(s, extra string) (rune, bool) {
	for _, r := range s {
		if unicode.IsControl(r) || strings.ContainsRune(extra, r) || r == unicode.ReplacementChar {
			return r, true
		}
		if r != ' ' && unicode.IsSpace(r) {
			return r, true
		}
	}
	return 0, false
}

// ParseConstraints parses every constraint of a placement, naming the
// position of the first bad one.
func ParseConstraints(list []string) ([]Constraint, error) {
	out := make([]Constraint, 0, len(list))
	for i, s := range list {
		c, err := ParseConstraint(s)
		if err != nil {
			return nil, fmt.Errorf("constraints[%d]: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// String returns the canonical text, which ParseConstraint reads back to
// the same Constraint.
func (c Constraint) String() string {
	field := string(c.Field)
	if c.Field == FieldNodeLabel {
		field = labelPrefix + c.Label
	}
	return field + string(c.Op) + c.Value
}

// Match reports whether node n satisfies c. A nil node matches nothing.
func (c Constraint) Match(n *Node) bool {
	if n == nil {
		return false
	}
	var have string
	switch c.Field {
	case FieldNodeID:
		have = n.ID
	case FieldNodeHostname:
		have = n.Hostname
	case FieldNodeRole:
		have = string(n.Role)
	case FieldNodeLabel:
		have = n.Labels[c.Label]
	default:
		return false
	}
	equal := strings.EqualFold(have, c.Value)
	switch c.Op {
	case OpEqual:
		return equal
	case OpNotEqual:
		return !equal
	}
	return false
}

// Preference is one parsed placement preference. The only kind is
// "spread=node.labels.KEY": balance a service's tasks across the values of
// the label; nodes without the label form one group of their own.
type Preference struct {
	// SpreadLabel is the label key whose values the tasks spread over.
	SpreadLabel string
}

// ParsePreference reads "spread=node.labels.KEY" (spaces around the parts
// are ignored).
func ParsePreference(s string) (Preference, error) {
	fail := func(format string, args ...any) (Preference, error) {
		return Preference{}, fmt.Errorf("%w preference %q: %s", ErrInvalidPlacement, s, fmt.Sprintf(format, args...))
	}
	kind, target, ok := strings.Cut(s, "=")
	if !ok {
		return fail("want spread=node.labels.KEY")
	}
	kind, target = strings.TrimSpace(kind), strings.TrimSpace(target)
	if !strings.EqualFold(kind, "spread") {
		return fail("unknown kind %q: the only kind is spread (spread=node.labels.KEY)", kind)
	}
	if !hasLabelPrefix(target) {
		return fail("cannot spread over %q: want node.labels.KEY", target)
	}
	key := target[len(labelPrefix):]
	if key == "" {
		return fail("missing label key after %s", labelPrefix)
	}
	if r, bad := badRune(key, " =!"); bad {
		return fail("label key %q contains %q", key, r)
	}
	return Preference{SpreadLabel: key}, nil
}

// ParsePreferences parses every preference of a placement, naming the
// position of the first bad one.
func ParsePreferences(list []string) ([]Preference, error) {
	out := make([]Preference, 0, len(list))
	for i, s := range list {
		p, err := ParsePreference(s)
		if err != nil {
			return nil, fmt.Errorf("preferences[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// String returns the canonical text, which ParsePreference reads back.
func (p Preference) String() string { return "spread=" + labelPrefix + p.SpreadLabel }

// Value returns the node's value of the spread label and whether it has
// the label at all.
func (p Preference) Value(n *Node) (string, bool) {
	if n == nil {
		return "", false
	}
	v, ok := n.Labels[p.SpreadLabel]
	return v, ok
}
