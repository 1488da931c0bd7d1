package api

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Secrets and configs, as Swarm has them: named data kept in the Raft
// state, sent only to the agents that run a task using it, and mounted into
// that task's containers from a tmpfs. A secret's data is never shown; a
// config's may be. Both are immutable but for their labels: rotate one by
// creating another and moving the services over.

// The two kinds of data object; one type (Secret) holds either.
const (
	KindSecret = "secret"
	KindConfig = "config"
)

// MaxSecretBytes is the most data a secret or config may hold: Swarm's
// limit (500 KiB).
const MaxSecretBytes = 500 << 10

// MaxSecretRefs bounds how many secrets (and, apart, configs) one service uses.
const MaxSecretRefs = 64

// DefaultSecretMode is the file mode of a mounted secret or config when the
// reference gives none, as in Docker.
const DefaultSecretMode = 0o444

// SecretsDir is where a secret is mounted when its target is not absolute.
const SecretsDir = "/run/secrets"

// SecretSpec is what a user gives: a name, labels and the data.
type SecretSpec struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Data   []byte            `json:"data,omitempty"`
}

// Secret is a secret or a config in the store (Kind says which).
type Secret struct {
	ID        string     `json:"id"`
	Kind      string     `json:"kind"` // KindSecret | KindConfig
	Spec      SecretSpec `json:"spec"`
	Version   uint64     `json:"version"`
	CreatedAt time.Time  `json:"created_at,omitzero"`
	UpdatedAt time.Time  `json:"updated_at,omitzero"`
}

// Clone returns a deep copy of s.
func (s *Secret) Clone() *Secret {
	if s == nil {
		return nil
	}
	c := *s
	c.Spec.Labels = cloneMap(s.Spec.Labels)
	c.Spec.Data = append([]byte(nil), s.Spec.Data...)
	return &c
}

// Redacted is a copy of s without its data: what events carry and what is
// shown of a secret.
func (s *Secret) Redacted() *Secret {
	if s == nil {
		return nil
	}
	c := *s
	c.Spec.Labels = cloneMap(s.Spec.Labels)
	c.Spec.Data = nil
	return &c
}

// SecretReference is a service's use of one secret (or config: the same
// shape): which one, and the file it becomes in each container.
type SecretReference struct {
	SecretID   string `json:"secret_id,omitempty"` // filled in by the leader from SecretName
	SecretName string `json:"secret_name"`
	// Target is the file: for a secret a name under SecretsDir (or an
	// absolute path), for a config an absolute path. Default: the name
	// (SecretsDir/NAME, or /NAME for a config).
	Target string `json:"target,omitempty"`
	UID    uint32 `json:"uid,omitempty"`
	GID    uint32 `json:"gid,omitempty"`
	Mode   uint32 `json:"mode,omitempty"` // permission bits; 0: DefaultSecretMode
}

// ConfigReference is a service's use of one config.
type ConfigReference = SecretReference

// SecretFile is the file a reference becomes in a container: what the
// dispatcher resolved and the agent mounts (it holds the data, so it lives
// only in the agent's memory and its tmpfs).
type SecretFile struct {
	Path string // absolute path in the container
	UID  uint32
	GID  uint32
	Mode uint32
	Data []byte
}

// FilePath is where the reference's file appears in the container.
func (r SecretReference) FilePath(kind string) string {
	t := r.Target
	if t == "" {
		t = r.SecretName
	}
	if path.IsAbs(t) {
		return path.Clean(t)
	}
	if kind == KindConfig {
		return "/" + t
	}
	return path.Join(SecretsDir, t)
}

// FileMode is the reference's mode, defaulted.
func (r SecretReference) FileMode() uint32 {
	if r.Mode == 0 {
		return DefaultSecretMode
	}
	return r.Mode
}

// ValidateSecretName checks a secret's or config's name with the service
// name rule (letters, digits, '-', '_', '.'; a letter or digit at both ends).
func ValidateSecretName(name string) error { return ValidateServiceName(name) }

// ValidateSecretSpec checks what a create asks for: the name, the labels,
// and the data (present, at most MaxSecretBytes).
func ValidateSecretSpec(kind string, s *SecretSpec) error {
	if s == nil {
		return fieldErr("spec", "", "missing")
	}
	var errs []error
	if err := ValidateSecretName(s.Name); err != nil {
		errs = append(errs, &FieldError{Field: "spec.name", Value: s.Name, Err: err})
	}
	errs = append(errs, validateLabels("spec.labels", s.Labels)...)
	switch n := len(s.Data); {
	case n == 0:
		errs = append(errs, fieldErr("spec.data", "0 bytes", "a %s needs data (at most %d bytes)", kind, MaxSecretBytes))
	case n > MaxSecretBytes:
		errs = append(errs, fieldErr("spec.data", strconv.Itoa(n)+" bytes", "a %s holds at most %d bytes (500 KiB)", kind, MaxSecretBytes))
	}
	return joinErrors(errs)
}

// validateSecretRefs checks a spec's references of one kind: names, file
// paths, modes, and that no two land on one path.
func validateSecretRefs(kind string, refs []SecretReference) []error {
	field := "spec." + kind + "s"
	if err := CheckCount(field, len(refs), MaxSecretRefs); err != nil {
		return []error{err}
	}
	var errs []error
	paths := map[string]int{}
	for i, r := range refs {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := ValidateSecretName(r.SecretName); err != nil {
			errs = append(errs, &FieldError{Field: f + ".source", Value: r.SecretName, Err: err})
			continue
		}
		if err := validateSecretTarget(kind, r.Target); err != nil {
			errs = append(errs, &FieldError{Field: f + ".target", Value: r.Target, Err: err})
			continue
		}
		if r.Mode > 0o777 {
			errs = append(errs, fieldErr(f+".mode", fmt.Sprintf("%#o", r.Mode), "want permission bits, at most 0777"))
		}
		p := r.FilePath(kind)
		if j, dup := paths[p]; dup {
			errs = append(errs, fieldErr(f+".target", r.Target, "%s is also the file of %s[%d]", p, field, j))
		}
		paths[p] = i
	}
	return errs
}

func validateSecretTarget(kind, t string) error {
	switch {
	case t == "":
		return nil
	case len(t) > MaxPathLen:
		return fmt.Errorf("%d bytes, at most %d allowed", len(t), MaxPathLen)
	case strings.ContainsRune(t, 0):
		return errors.New("holds a NUL byte")
	case kind == KindConfig && !path.IsAbs(t):
		return errors.New("a config's target must be an absolute path")
	case !path.IsAbs(t) && (strings.Contains(t, "/") || t == "." || t == ".."):
		return fmt.Errorf("a relative target is a file name under %s (no '/')", SecretsDir)
	case path.IsAbs(t) && path.Clean(t) == "/":
		return errors.New("the target cannot be /")
	}
	return nil
}

// SecretIDs returns the IDs a spec's references of kind name.
func SecretIDs(s *ServiceSpec, kind string) []string {
	refs := s.Secrets
	if kind == KindConfig {
		refs = s.Configs
	}
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		out = append(out, r.SecretID)
	}
	return out
}

// UsesSecret reports whether spec refers to the secret (or config) x.
func UsesSecret(s *ServiceSpec, x *Secret) bool {
	refs := s.Secrets
	if x.Kind == KindConfig {
		refs = s.Configs
	}
	for _, r := range refs {
		if r.SecretID == x.ID {
			return true
		}
	}
	return false
}
