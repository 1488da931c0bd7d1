package controlapi

import (
	"context"
	"errors"

	"google.golang.org/grpc/metadata"

	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// requestID returns the ID of this write: the one the client (or the
// manager that forwarded the call) sent, or a new one. The returned
// context passes it on if the call is forwarded, so every attempt of the
// write reaches the leader with the same ID.
func requestID(ctx context.Context) (context.Context, string, error) {
	rid := incoming(ctx, shoalpb.RequestIDKey)
	switch {
	case rid == "":
		rid = newID()
	case len(rid) > raftstore.MaxRequestIDLength:
		return ctx, "", invalidf("metadata %s %.16q…: %d bytes, longer than %d",
			shoalpb.RequestIDKey, rid, len(rid), raftstore.MaxRequestIDLength)
	}
	return metadata.AppendToOutgoingContext(ctx, shoalpb.RequestIDKey, rid), rid, nil
}

// idempotent marks the error of a write that carried a request ID: if its
// commit is uncertain, sending it again is safe, because the FSM answers a
// repeated request ID with the first result.
type idempotent struct{ error }

func (e idempotent) Unwrap() error { return e.error }

// commit sends cmd to Raft as request rid. It is the only way this package
// writes, so that every write a retry may repeat is deduplicated.
func (s *Server) commit(ctx context.Context, rid string, cmd raftstore.Command) (raftstore.Response, error) {
	resp, err := s.applier.Apply(ctx, raftstore.Request{ID: rid, Command: cmd})
	if errors.Is(err, raftstore.ErrCommitUncertain) {
		return resp, idempotent{err}
	}
	return resp, err
}

// retrySafe reports whether a local attempt failed for want of leadership
// in a way that allows another attempt (on this manager once it leads
// again, or on the new leader): the command was not proposed, or it was a
// request, whose repeat the FSM answers with the first result.
func retrySafe(err error) bool {
	if !errors.Is(err, raftstore.ErrNotLeader) && !errors.Is(err, raftstore.ErrNoLeader) {
		return false
	}
	var ok idempotent
	return !errors.Is(err, raftstore.ErrCommitUncertain) || errors.As(err, &ok)
}

// written is the object a write answered with: the command's value, or,
// for a repeat answered after a snapshot restore (which keeps only the
// index), the object as reread finds it in the state now.
func written[T any](value any, reread func() T) T {
	if v, ok := value.(T); ok {
		return v
	}
	return reread()
}
