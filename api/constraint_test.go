package api

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseConstraint(t *testing.T) {
	tests := []struct {
		in   string
		want Constraint
		text string // canonical String()
	}{
		{"node.id==abc", Constraint{Field: FieldNodeID, Op: OpEqual, Value: "abc"}, "node.id==abc"},
		{"node.hostname!=web-1", Constraint{Field: FieldNodeHostname, Op: OpNotEqual, Value: "web-1"}, "node.hostname!=web-1"},
		{"node.role==manager", Constraint{Field: FieldNodeRole, Op: OpEqual, Value: "manager"}, "node.role==manager"},
		{"node.role != Worker", Constraint{Field: FieldNodeRole, Op: OpNotEqual, Value: "worker"}, "node.role!=worker"},
		{"node.labels.zone==a", Constraint{Field: FieldNodeLabel, Label: "zone", Op: OpEqual, Value: "a"}, "node.labels.zone==a"},
		{"  node.labels.zone  ==  a  ", Constraint{Field: FieldNodeLabel, Label: "zone", Op: OpEqual, Value: "a"}, "node.labels.zone==a"},
		{"\tnode.labels.zone\t!=\tb\n", Constraint{Field: FieldNodeLabel, Label: "zone", Op: OpNotEqual, Value: "b"}, "node.labels.zone!=b"},
		{"NODE.Labels.Zone==A", Constraint{Field: FieldNodeLabel, Label: "Zone", Op: OpEqual, Value: "A"}, "node.labels.Zone==A"},
		{"node.labels.com.example.disk==ssd", Constraint{Field: FieldNodeLabel, Label: "com.example.disk", Op: OpEqual, Value: "ssd"}, "node.labels.com.example.disk==ssd"},
		{"node.labels.desc==fast disk", Constraint{Field: FieldNodeLabel, Label: "desc", Op: OpEqual, Value: "fast disk"}, "node.labels.desc==fast disk"},
		{"Node.ID==x", Constraint{Field: FieldNodeID, Op: OpEqual, Value: "x"}, "node.id==x"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseConstraint(tt.in)
			if err != nil {
				t.Fatalf("ParseConstraint(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("ParseConstraint(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if s := got.String(); s != tt.text {
				t.Fatalf("String() = %q, want %q", s, tt.text)
			}
		})
	}
}

func TestParseConstraintErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // part of the message after the quoted input
	}{
		{"", "no operator"},
		{"node.labels.zone=a", "no operator"},
		{"node.labels.zone", "no operator"},
		{"==a", "missing field before =="},
		{"node.labels.zone==", "missing value after =="},
		{"node.labels.zone!=   ", "missing value after !="},
		{"node.labels.==a", "missing label key after node.labels."},
		{"node.labels.my zone==a", `label key "my zone" contains ' '`},
		{"node.name==a", `unknown field "node.name"`},
		{"engine.labels.x==a", `unknown field "engine.labels.x"`},
		{"node.role==boss", `role "boss": want manager or worker`},
		{"node.id==a==b", `value "a==b" contains '='`},
		{"node.id!==a", `value "=a" contains '='`},
		{"node.labels.x==a!b", `value "a!b" contains '!'`},
		{"node.labels.x==a\x00b", `value "a\x00b" contains '\x00'`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseConstraint(tt.in)
			if err == nil {
				t.Fatalf("ParseConstraint(%q) succeeded, want error containing %q", tt.in, tt.want)
			}
			if !errors.Is(err, ErrInvalidPlacement) {
				t.Errorf("error %v does not wrap ErrInvalidPlacement", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "constraint "+strconv.Quote(tt.in)) {
				t.Errorf("error %q does not name the constraint text %q", msg, tt.in)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not say %q", msg, tt.want)
			}
		})
	}
}

func TestParseConstraintsNamesPosition(t *testing.T) {
	_, err := ParseConstraints([]string{"node.role==worker", "node.zone==a"})
	if err == nil || !strings.HasPrefix(err.Error(), "constraints[1]: ") || !errors.Is(err, ErrInvalidPlacement) {
		t.Fatalf("ParseConstraints error = %v, want constraints[1]: ... wrapping ErrInvalidPlacement", err)
	}
	got, err := ParseConstraints([]string{"node.role==worker", "node.labels.a!=b"})
	if err != nil || len(got) != 2 || got[1].Label != "a" {
		t.Fatalf("ParseConstraints = %+v, %v", got, err)
	}
}

func TestConstraintMatch(t *testing.T) {
	node := &Node{
		ID: "n1", Hostname: "Web-1", Role: RoleWorker,
		Labels: map[string]string{"zone": "a", "disk": "SSD", "empty": ""},
	}
	tests := []struct {
		c    string
		want bool
	}{
		{"node.id==n1", true},
		{"node.id==N1", true},
		{"node.id!=n1", false},
		{"node.id==n2", false},
		{"node.hostname==web-1", true},
		{"node.hostname!=web-2", true},
		{"node.role==worker", true},
		{"node.role==manager", false},
		{"node.role!=manager", true},
		{"node.labels.zone==a", true},
		{"node.labels.zone==b", false},
		{"node.labels.zone!=b", true},
		{"node.labels.disk==ssd", true},
		{"node.labels.Zone==a", false}, // label keys are case-sensitive
		{"node.labels.missing==x", false},
		{"node.labels.missing!=x", true},
		{"node.labels.empty!=x", true},
	}
	for _, tt := range tests {
		t.Run(tt.c, func(t *testing.T) {
			c, err := ParseConstraint(tt.c)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Match(node); got != tt.want {
				t.Fatalf("%s.Match = %v, want %v", tt.c, got, tt.want)
			}
		})
	}
	c, _ := ParseConstraint("node.labels.zone!=a")
	if c.Match(nil) {
		t.Fatal("a constraint matched a nil node")
	}
}

func TestParsePreference(t *testing.T) {
	ok := []struct{ in, key string }{
		{"spread=node.labels.zone", "zone"},
		{" spread = node.labels.rack ", "rack"},
		{"SPREAD=Node.Labels.DC", "DC"},
	}
	for _, tt := range ok {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParsePreference(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if p.SpreadLabel != tt.key {
				t.Fatalf("SpreadLabel = %q, want %q", p.SpreadLabel, tt.key)
			}
			back, err := ParsePreference(p.String())
			if err != nil || back != p {
				t.Fatalf("round trip of %q: %+v, %v", p.String(), back, err)
			}
		})
	}
	bad := []struct{ in, want string }{
		{"spread", "want spread=node.labels.KEY"},
		{"binpack=node.labels.zone", `unknown kind "binpack"`},
		{"spread=node.role", `cannot spread over "node.role"`},
		{"spread=node.labels.", "missing label key"},
		{"spread=node.labels.a b", `label key "a b" contains ' '`},
	}
	for _, tt := range bad {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParsePreference(tt.in)
			if err == nil {
				t.Fatalf("ParsePreference(%q) succeeded", tt.in)
			}
			msg := err.Error()
			if !errors.Is(err, ErrInvalidPlacement) || !strings.Contains(msg, strconv.Quote(tt.in)) || !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q: want it to wrap ErrInvalidPlacement, quote %q and say %q", msg, tt.in, tt.want)
			}
		})
	}
	if _, err := ParsePreferences([]string{"spread=node.labels.a", "x"}); err == nil || !strings.HasPrefix(err.Error(), "preferences[1]: ") {
		t.Fatalf("ParsePreferences error = %v, want preferences[1]: ...", err)
	}
}

func TestPreferenceValue(t *testing.T) {
	p := Preference{SpreadLabel: "zone"}
	if v, ok := p.Value(&Node{Labels: map[string]string{"zone": "a"}}); v != "a" || !ok {
		t.Fatalf("Value = %q, %v", v, ok)
	}
	if _, ok := p.Value(&Node{}); ok {
		t.Fatal("a node without the label reported having it")
	}
}

func FuzzParseConstraint(f *testing.F) {
	for _, s := range []string{
		"node.id==a", "node.hostname != h", "node.role==manager", "node.labels.zone==a",
		"node.labels.x!=y z", "==", "!=", "node.labels.==", "a==b!=c", "node.role==Worker",
	} {
		f.Add(s)
	}
	nodes := []*Node{
		{ID: "a", Hostname: "h", Role: RoleManager, Labels: map[string]string{"zone": "a", "x": "y z"}},
		{ID: "b", Role: RoleWorker},
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConstraint(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPlacement) || !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("error %q must wrap ErrInvalidPlacement and quote the input", err)
			}
			return
		}
		text := c.String()
		back, err := ParseConstraint(text)
		if err != nil {
			t.Fatalf("canonical text %q of %q does not parse: %v", text, s, err)
		}
		if back != c {
			t.Fatalf("round trip of %q: %+v, then %+v", s, c, back)
		}
		neg := c
		neg.Op = OpEqual
		if c.Op == OpEqual {
			neg.Op = OpNotEqual
		}
		for _, n := range nodes {
			if c.Match(n) == neg.Match(n) {
				t.Fatalf("%s and %s agree on node %s", c, neg, n.ID)
			}
		}
	})
}

func FuzzParsePreference(f *testing.F) {
	for _, s := range []string{"spread=node.labels.zone", " spread = node.labels.a.b ", "spread=", "=", "spread=node.labels."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePreference(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidPlacement) || !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("error %q must wrap ErrInvalidPlacement and quote the input", err)
			}
			return
		}
		back, err := ParsePreference(p.String())
		if err != nil || back != p {
			t.Fatalf("round trip of %q through %q: %+v, %v", s, p.String(), back, err)
		}
	})
}
