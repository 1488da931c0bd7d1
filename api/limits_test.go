package api

import (
	"errors"
	"math"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFieldErrorCutsLongValues(t *testing.T) {
	long := strings.Repeat("é", 1<<20) // two bytes each: the cut must not split one
	msg := (&FieldError{Field: "spec.name", Value: long, Err: errors.New("too long")}).Error()
	if len(msg) > 200 || !strings.Contains(msg, "(2097152 bytes)") || !strings.HasPrefix(msg, `spec.name "é`) {
		t.Fatalf("message %q: want the field, the start of the value and its size", msg[:min(len(msg), 300)])
	}
	if !utf8.ValidString(msg) {
		t.Fatalf("message cut a character: %q", msg)
	}
	short := (&FieldError{Field: "f", Value: "v", Err: errors.New("bad")}).Error()
	if short != `f "v": bad` {
		t.Fatalf("short message = %q", short)
	}
}

func TestValidationReportsAtMostSomeProblems(t *testing.T) {
	s := validSpec()
	s.Env = make([]string, MaxEnv)
	for i := range s.Env {
		s.Env[i] = "no equals sign"
	}
	err := ValidateServiceSpec(s)
	if err == nil || !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	if n := strings.Count(err.Error(), "spec.env["); n != maxErrors {
		t.Fatalf("%d problems shown, want %d", n, maxErrors)
	}
	if !strings.Contains(err.Error(), "1004 more problems not shown") {
		t.Fatalf("no count of the rest in %q", err.Error()[len(err.Error())-200:])
	}
}

func TestReplicaLimits(t *testing.T) {
	if got := (ClusterSettings{}).ReplicaLimit(); got != DefaultMaxReplicas {
		t.Errorf("default limit = %d", got)
	}
	if got := (ClusterSettings{MaxReplicas: math.MaxUint64}).ReplicaLimit(); got != MaxReplicasCeiling {
		t.Errorf("limit over the ceiling = %d, want the ceiling", got)
	}
	if err := ValidateClusterSettings(ClusterSettings{MaxReplicas: MaxReplicasCeiling + 1}); err == nil || !strings.Contains(err.Error(), "100001") {
		t.Errorf("settings over the ceiling: %v", err)
	}
	err := ValidateReplicas("replicas", 11, 10)
	if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `replicas "11": more than the cluster's max-replicas, 10`) {
		t.Errorf("ValidateReplicas = %v", err)
	}
	svcs := []*Service{
		{Spec: ServiceSpec{Name: "a", Mode: ModeReplicated, Replicas: 8}},
		{Spec: ServiceSpec{Name: "g", Mode: ModeGlobal}},
	}
	if err := ValidateSettingsFor(ClusterSettings{MaxReplicas: 8}, svcs); err != nil {
		t.Errorf("limit equal to a service: %v", err)
	}
	if err := ValidateSettingsFor(ClusterSettings{MaxReplicas: 7}, svcs); err == nil || !strings.Contains(err.Error(), `"a" has 8 replicas`) {
		t.Errorf("limit below a service: %v", err)
	}
	// Replicas × the largest reservation stays inside int64.
	if uint64(MaxMemoryBytes) > math.MaxInt64/MaxReplicasCeiling || uint64(MaxNanoCPUs) > math.MaxInt64/MaxReplicasCeiling {
		t.Fatal("MaxReplicasCeiling × a largest reservation overflows int64")
	}
}

func TestRequestLimits(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string // "" for nil
	}{
		{"ref ok", ValidateRef("service", "web", true), ""},
		{"ref empty optional", ValidateRef("node", "", false), ""},
		{"ref empty required", ValidateRef("service", "", true), `service "": missing`},
		{"ref oversize", ValidateRef("node", strings.Repeat("n", MaxRefLen+1), true), "at most 256"},
		{"tail all", ValidateLogTail(-1), ""},
		{"tail max", ValidateLogTail(MaxLogTail), ""},
		{"tail negative", ValidateLogTail(-2), `tail "-2"`},
		{"tail overflow", ValidateLogTail(math.MaxInt64), "9223372036854775807"},
		{"filters ok", ValidateFilterList([]string{"type=task"}), ""},
		{"filters many", ValidateFilterList(make([]string, MaxFilters+1)), "33 entries"},
		{"filter oversize", ValidateFilterList([]string{strings.Repeat("f", MaxFilterLen+1)}), "filters[0]"},
		{"node update ok", ValidateNodeUpdate("drain", map[string]string{"zone": "a"}, []string{"old"}), ""},
		{"node update keeps", ValidateNodeUpdate("", nil, nil), ""},
		{"availability", ValidateNodeUpdate("asleep", nil, nil), `availability "asleep": want active, pause or drain`},
		{"label_add empty key", ValidateNodeUpdate("", map[string]string{"": "x"}, nil), `label_add "": empty label key`},
		{"label_rm blank", ValidateNodeUpdate("", nil, []string{" "}), `label_rm[0] " ": empty label key`},
		{"add and remove", ValidateNodeUpdate("", map[string]string{"z": "a"}, []string{"z"}), `label_rm[0] "z": both added and removed`},
		{"manager ok", ValidateManager(Manager{ID: "m1", RaftAddr: "10.0.0.1:4243", Addr: "[::1]:4242"}), ""},
		{"manager no id", ValidateManager(Manager{RaftAddr: "h:1", Addr: "h:2"}), `id "": missing`},
		{"manager raft addr", ValidateManager(Manager{ID: "m1", RaftAddr: "h", Addr: "h:2"}), `raft_addr "h": want host:port`},
		{"manager port", ValidateManager(Manager{ID: "m1", RaftAddr: "h:70000", Addr: "h:2"}), "1 to 65535"},
		{"manager gossip optional", ValidateManager(Manager{ID: "m1", RaftAddr: "h:1", Addr: "h:2", GossipAddr: ""}), ""},
		{"manager gossip bad", ValidateManager(Manager{ID: "m1", RaftAddr: "h:1", Addr: "h:2", GossipAddr: ":3"}), "gossip_addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == "" {
				if tt.err != nil {
					t.Fatalf("err = %v", tt.err)
				}
				return
			}
			if tt.err == nil || !errors.Is(tt.err, ErrInvalid) || !strings.Contains(tt.err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalid containing %q", tt.err, tt.want)
			}
		})
	}
}

func TestResourcesSaturate(t *testing.T) {
	full := Resources{NanoCPUs: math.MaxInt64, MemoryBytes: math.MaxInt64}
	if got := full.Add(full).Add(full); got != full {
		t.Errorf("max + max + max = %+v, want it to stay at max", got)
	}
	low := Resources{NanoCPUs: math.MinInt64, MemoryBytes: math.MinInt64}
	if got := low.Add(low); got != low {
		t.Errorf("min + min = %+v", got)
	}
	if got := (Resources{}).Sub(low); got != full {
		t.Errorf("0 - min = %+v, want max", got)
	}
	if got := low.Sub(Resources{NanoCPUs: 1, MemoryBytes: 1}); got != low {
		t.Errorf("min - 1 = %+v, want min", got)
	}
	if got := (Resources{NanoCPUs: 5, MemoryBytes: -5}).Sub(Resources{NanoCPUs: 7, MemoryBytes: -7}); got != (Resources{NanoCPUs: -2, MemoryBytes: 2}) {
		t.Errorf("plain difference = %+v", got)
	}
}

func TestFormatExtremes(t *testing.T) {
	if got := FormatCPUs(math.MinInt64); got != "-9223372036.854775808" {
		t.Errorf("FormatCPUs(min) = %q", got)
	}
	if got := FormatMemory(math.MinInt64); got != "-8EiB" {
		t.Errorf("FormatMemory(min) = %q", got)
	}
}

// TestLimitsAreInclusive: a spec at every limit is accepted; the tests of
// the control API send one past each.
func TestLimitsAreInclusive(t *testing.T) {
	s := validSpec()
	s.Name = strings.Repeat("a", MaxNameLen)
	s.Replicas = MaxReplicasCeiling
	s.Command = make([]string, MaxArgs)
	for i := range s.Command {
		s.Command[i] = "x"
	}
	s.Args = []string{strings.Repeat("a", MaxArgLen)}
	s.Env = []string{"K=" + strings.Repeat("v", MaxArgLen-2)}
	s.Labels = map[string]string{strings.Repeat("k", MaxLabelKeyLen): strings.Repeat("v", MaxLabelValueLen)}
	s.Dir = "/" + strings.Repeat("d", MaxPathLen-1)
	s.User = strings.Repeat("u", MaxUserLen)
	s.Resources = ResourceRequirements{
		Reservations: Resources{NanoCPUs: MaxNanoCPUs, MemoryBytes: MaxMemoryBytes},
		Limits:       Resources{NanoCPUs: MaxNanoCPUs, MemoryBytes: MaxMemoryBytes},
	}
	s.StopGracePeriod = MaxDuration
	s.RestartPolicy.Delay, s.RestartPolicy.Window, s.RestartPolicy.MaxAttempts = MaxDuration, MaxRestartWindow, MaxRestartAttempts
	s.UpdateConfig.Parallelism, s.UpdateConfig.Delay, s.UpdateConfig.Monitor = MaxReplicasCeiling, MaxDuration, MaxDuration
	s.Healthcheck = &Healthcheck{Test: []string{"CMD", "true"}, Interval: MinHealthInterval, Timeout: MaxDuration,
		StartPeriod: MaxDuration, Retries: MaxHealthRetries}
	s.Placement.MaxReplicasPerNode = MaxReplicasCeiling
	if err := ValidateServiceSpec(s); err != nil {
		t.Fatalf("a spec at the limits is refused: %v", err)
	}
}
