package api

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// ClusterSettings are the cluster-wide settings an operator changes with
// shoalctl cluster update. A zero field means its default.
type ClusterSettings struct {
	// MaxReplicas is the most replicas one service may have (0: the
	// default, DefaultMaxReplicas). At most MaxReplicasCeiling.
	MaxReplicas uint64 `json:"max_replicas,omitempty"`
	// CertExpiry is the life of node certificates the CA issues (0: the
	// default, DefaultCertExpiry), between MinCertExpiry and MaxCertExpiry.
	CertExpiry Duration `json:"cert_expiry,omitempty"`
	// GossipKeyRotation is how often the leader replaces the gossip key
	// (0: DefaultGossipKeyRotation). At least MinGossipKeyRotation.
	GossipKeyRotation Duration `json:"gossip_key_rotation,omitempty"`
}

// KeyRotation is the gossip key rotation interval in force.
func (s ClusterSettings) KeyRotation() time.Duration {
	if s.GossipKeyRotation == 0 {
		return DefaultGossipKeyRotation
	}
	return time.Duration(s.GossipKeyRotation)
}

// ReplicaLimit is the most replicas one service may have in a cluster with
// these settings.
func (s ClusterSettings) ReplicaLimit() uint64 {
	if s.MaxReplicas == 0 {
		return DefaultMaxReplicas
	}
	return min(s.MaxReplicas, MaxReplicasCeiling)
}

// ValidateClusterSettings checks settings an operator asks for.
func ValidateClusterSettings(s ClusterSettings) error {
	if s.MaxReplicas > MaxReplicasCeiling {
		return fieldErr("max_replicas", strconv.FormatUint(s.MaxReplicas, 10), "more than %d, the most any cluster allows", MaxReplicasCeiling)
	}
	if err := validateCertExpiry(s.CertExpiry); err != nil {
		return err
	}
	if r := time.Duration(s.GossipKeyRotation); r != 0 && r < MinGossipKeyRotation {
		return fieldErr("gossip_key_rotation", r.String(), "shorter than %s, the shortest allowed (0 takes the default %s)", MinGossipKeyRotation, DefaultGossipKeyRotation)
	}
	return nil
}

// ValidateSettingsFor checks settings against the services a cluster has:
// a max-replicas below what a service already runs is refused, naming the
// service, since the orchestrator bounds every service by it.
func ValidateSettingsFor(s ClusterSettings, services []*Service) error {
	limit := s.ReplicaLimit()
	for _, svc := range services {
		if svc.Spec.Mode == ModeReplicated && svc.Spec.Replicas > limit {
			return fieldErr("max_replicas", strconv.FormatUint(limit, 10),
				"service %q has %d replicas; scale it down first", svc.Spec.Name, svc.Spec.Replicas)
		}
	}
	return nil
}

// ValidateNodeUpdate checks an operator's change of a node: the
// availability ("" keeps it) and the labels added and removed. The labels
// the node ends up with are checked with ValidateLabels.
func ValidateNodeUpdate(availability string, add map[string]string, rm []string) error {
	switch NodeAvailability(availability) {
	case "", AvailabilityActive, AvailabilityPause, AvailabilityDrain:
	default:
		return fieldErr("availability", availability, "want %s, %s or %s", AvailabilityActive, AvailabilityPause, AvailabilityDrain)
	}
	if err := ValidateLabels("label_add", add); err != nil {
		return err
	}
	if err := CheckCount("label_rm", len(rm), MaxLabels); err != nil {
		return err
	}
	for i, k := range rm {
		f := fmt.Sprintf("label_rm[%d]", i)
		switch {
		case strings.TrimSpace(k) == "":
			return fieldErr(f, k, "empty label key")
		case len(k) > MaxLabelKeyLen:
			return fieldErr(f, k, "label key of %d bytes, at most %d allowed", len(k), MaxLabelKeyLen)
		}
		if _, ok := add[k]; ok {
			return fieldErr(f, k, "both added and removed")
		}
	}
	return nil
}

// ValidateManager checks what a manager asks to be recorded as when it
// joins: an id, and host:port addresses (the gossip address is optional).
// A bad Raft address would make the leader add a voter no one can reach.
func ValidateManager(m Manager) error {
	switch {
	case m.ID == "":
		return fieldErr("id", m.ID, "missing")
	case len(m.ID) > MaxManagerIDLen:
		return fieldErr("id", m.ID, "%d bytes, at most %d allowed", len(m.ID), MaxManagerIDLen)
	case strings.IndexFunc(m.ID, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return fieldErr("id", m.ID, "contains white space or a control character")
	}
	for _, a := range []struct {
		field, addr string
		required    bool
	}{{"raft_addr", m.RaftAddr, true}, {"addr", m.Addr, true}, {"gossip_addr", m.GossipAddr, false}} {
		if a.addr == "" && !a.required {
			continue
		}
		if err := ValidateHostPort(a.addr); err != nil {
			return &FieldError{Field: a.field, Value: a.addr, Err: err}
		}
	}
	return nil
}

// ValidateHostPort checks a host:port address with a port from 1 to 65535.
func ValidateHostPort(addr string) error {
	switch {
	case addr == "":
		return errors.New("missing")
	case len(addr) > MaxAddrLen:
		return fmt.Errorf("%d bytes, at most %d allowed", len(addr), MaxAddrLen)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("want host:port: %w", err)
	}
	if host == "" || strings.IndexFunc(host, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0 {
		return fmt.Errorf("host %q: want a host name or an IP address", host)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("port %q: want a number from 1 to 65535", port)
	}
	return nil
}
