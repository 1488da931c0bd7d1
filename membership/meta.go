package membership

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
	"github.com/shoal-sched/shoal/api"
)

// MetaVersion is the metadata format EncodeMeta writes.
//
// Compatibility rule: a later version may only append fields after the ones
// of version 1. A decoder reads the fields it knows and ignores what follows
// when the version is newer than its own, so a rolling upgrade keeps every
// member visible to every other. Version 2 appended KeysVersion.
const MetaVersion = 2

// MetaMaxSize is the most bytes of metadata a member may advertise
// (memberlist's own limit).
const MetaMaxSize = memberlist.MetaMaxSize

const flagLeaving = 1 << 0

var (
	// ErrInvalidMeta is wrapped by every error about metadata content,
	// whether it is ours (EncodeMeta) or a peer's (DecodeMeta).
	ErrInvalidMeta = errors.New("invalid gossip metadata")
	// ErrMetaTooLarge is wrapped when encoded metadata exceeds MetaMaxSize.
	ErrMetaTooLarge = errors.New("gossip metadata too large")
)

// Meta is what a member advertises to the cluster through gossip. It
// describes the node; it never carries desired state (that lives in Raft).
type Meta struct {
	// Version is the format version the sender wrote. DecodeMeta fills it;
	// EncodeMeta ignores it and always writes MetaVersion.
	Version  uint8
	NodeID   string
	Hostname string
	Role     api.NodeRole
	// GRPCAddr is the control API of a manager, or the Agent service of a
	// worker, as host:port.
	GRPCAddr    string
	NanoCPUs    int64
	MemoryBytes int64
	Labels      map[string]string
	// Leaving is set just before a graceful leave, because memberlist
	// reports a leave and a failure through the same callback.
	Leaving bool
	// KeysVersion is the version of the cluster's gossip keyring this
	// member runs (0: none, or a key given by flag). The leader moves a key
	// rotation on once every live member advertises the current version.
	KeysVersion uint64
}

// Clone returns a deep copy of m.
func (m Meta) Clone() Meta {
	m.Labels = maps.Clone(m.Labels)
	return m
}

// Resources returns the node's advertised capacity.
func (m Meta) Resources() api.Resources {
	return api.Resources{NanoCPUs: m.NanoCPUs, MemoryBytes: m.MemoryBytes}
}

// Validate checks the fields every member must advertise correctly.
func (m Meta) Validate() error {
	if m.NodeID == "" {
		return fmt.Errorf("%w: node_id is empty", ErrInvalidMeta)
	}
	if m.Role != api.RoleManager && m.Role != api.RoleWorker {
		return fmt.Errorf("%w: role %q: want %q or %q", ErrInvalidMeta, m.Role, api.RoleManager, api.RoleWorker)
	}
	if m.NanoCPUs < 0 {
		return fmt.Errorf("%w: nano_cpus %d is negative", ErrInvalidMeta, m.NanoCPUs)
	}
	if m.MemoryBytes < 0 {
		return fmt.Errorf("%w: memory_bytes %d is negative", ErrInvalidMeta, m.MemoryBytes)
	}
	for _, f := range []struct{ name, value string }{
		{"node_id", m.NodeID}, {"hostname", m.Hostname}, {"grpc_addr", m.GRPCAddr},
	} {
		if !utf8.ValidString(f.value) {
			return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalidMeta, f.name, f.value)
		}
	}
	if m.GRPCAddr != "" {
		if _, _, err := net.SplitHostPort(m.GRPCAddr); err != nil {
			return fmt.Errorf("%w: grpc_addr %q: want host:port", ErrInvalidMeta, m.GRPCAddr)
		}
	}
	for k, v := range m.Labels {
		if k == "" {
			return fmt.Errorf("%w: label with value %q has an empty key", ErrInvalidMeta, v)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return fmt.Errorf("%w: label %q=%q is not valid UTF-8", ErrInvalidMeta, k, v)
		}
	}
	return nil
}

// EncodeMeta returns the compact binary form of m (format MetaVersion):
//
//	version, flags, then node_id, hostname, role, grpc_addr as
//	uvarint-length strings, nano_cpus and memory_bytes as uvarints,
//	a uvarint label count and the labels sorted by key, then (version 2)
//	keys_version as a uvarint.
//
// It fails when m is invalid or when the result would not fit MetaMaxSize.
func EncodeMeta(m Meta) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, 128)
	var flags byte
	if m.Leaving {
		flags |= flagLeaving
	}
	b = append(b, MetaVersion, flags)
	for _, s := range []string{m.NodeID, m.Hostname, string(m.Role), m.GRPCAddr} {
		b = appendString(b, s)
	}
	b = binary.AppendUvarint(b, uint64(m.NanoCPUs))
	b = binary.AppendUvarint(b, uint64(m.MemoryBytes))
	fixed := len(b)
	b = binary.AppendUvarint(b, uint64(len(m.Labels)))
	for _, k := range slices.Sorted(maps.Keys(m.Labels)) {
		b = appendString(b, k)
		b = appendString(b, m.Labels[k])
	}
	b = binary.AppendUvarint(b, m.KeysVersion)
	if len(b) > MetaMaxSize {
		return nil, fmt.Errorf("%w: node %q encodes to %d bytes, over the %d-byte limit (its %d labels take %d bytes): use fewer or shorter labels",
			ErrMetaTooLarge, m.NodeID, len(b), MetaMaxSize, len(m.Labels), len(b)-fixed)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// DecodeMeta parses metadata written by EncodeMeta of this or a later
// format version. It never panics: any malformed input is an error that
// wraps ErrInvalidMeta.
func DecodeMeta(b []byte) (Meta, error) {
	if len(b) > MetaMaxSize {
		return Meta{}, fmt.Errorf("%w: %d bytes, over the %d-byte limit", ErrInvalidMeta, len(b), MetaMaxSize)
	}
	if len(b) < 2 {
		return Meta{}, fmt.Errorf("%w: %d bytes, too short for a header", ErrInvalidMeta, len(b))
	}
	if b[0] == 0 {
		return Meta{}, fmt.Errorf("%w: format version 0", ErrInvalidMeta)
	}
	m := Meta{Version: b[0], Leaving: b[1]&flagLeaving != 0}
	r := metaReader{buf: b[2:]}
	m.NodeID = r.string("node_id")
	m.Hostname = r.string("hostname")
	m.Role = api.NodeRole(r.string("role"))
	m.GRPCAddr = r.string("grpc_addr")
	m.NanoCPUs = r.int64("nano_cpus")
	m.MemoryBytes = r.int64("memory_bytes")
	m.Labels = r.labels()
	if m.Version >= 2 && len(r.buf) > 0 {
		m.KeysVersion = r.uvarint("keys_version")
	}
	if r.err != nil {
		return Meta{}, r.err
	}
	if len(r.buf) > 0 && m.Version == MetaVersion {
		return Meta{}, fmt.Errorf("%w: %d unexpected trailing bytes", ErrInvalidMeta, len(r.buf))
	}
	if err := m.Validate(); err != nil {
		return Meta{}, err
	}
	return m, nil
}

// metaReader consumes fields; after the first error every read is a no-op.
type metaReader struct {
	buf []byte
	err error
}

func (r *metaReader) uvarint(field string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.err = fmt.Errorf("%w: %s: truncated or overlong varint", ErrInvalidMeta, field)
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *metaReader) string(field string) string {
	n := r.uvarint(field)
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.buf)) {
		r.err = fmt.Errorf("%w: %s: length %d exceeds the %d bytes left", ErrInvalidMeta, field, n, len(r.buf))
		return ""
	}
	s := string(r.buf[:n])
	r.buf = r.buf[n:]
	return s
}

func (r *metaReader) int64(field string) int64 {
	v := r.uvarint(field)
	if v > 1<<63-1 {
		r.err = fmt.Errorf("%w: %s %d overflows int64", ErrInvalidMeta, field, v)
		return 0
	}
	return int64(v)
}

func (r *metaReader) labels() map[string]string {
	n := r.uvarint("labels")
	if r.err != nil || n == 0 {
		return nil
	}
	// Every label takes at least two bytes (two length prefixes), which
	// bounds the map a hostile peer can make us allocate.
	if n > uint64(len(r.buf))/2 {
		r.err = fmt.Errorf("%w: labels: count %d exceeds the %d bytes left", ErrInvalidMeta, n, len(r.buf))
		return nil
	}
	labels := make(map[string]string, n)
	for range n {
		k := r.string("label key")
		v := r.string("label value")
		if r.err != nil {
			return nil
		}
		if _, dup := labels[k]; dup {
			r.err = fmt.Errorf("%w: label %q appears twice", ErrInvalidMeta, k)
			return nil
		}
		labels[k] = v
	}
	return labels
}
