package controlapi

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/raftstore"
)

// Errors of the control API itself (lookups and request checks). Like the
// raftstore sentinels they are wrapped with the offending value and mapped
// to a gRPC code by toStatus.
var (
	// ErrAmbiguous: a name or id prefix matches more than one object.
	ErrAmbiguous = errors.New("ambiguous")
	// ErrPrecondition: the request is valid but the object is not in a
	// state that allows it (e.g. removing a node that is still up).
	ErrPrecondition = errors.New("failed precondition")
)

// invalidf returns an InvalidArgument domain error naming a field and value.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{raftstore.ErrInvalid}, args...)...)
}

// toStatus maps an error to a gRPC status. Status errors (from a forwarded
// call or a request check) pass through; sentinels get their code; the
// message is the error's own text, which names the object and value.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codeOf(err), err.Error())
}

func codeOf(err error) codes.Code {
	switch {
	case errors.Is(err, raftstore.ErrNotFound):
		return codes.NotFound
	case errors.Is(err, raftstore.ErrAlreadyExists):
		return codes.AlreadyExists
	case errors.Is(err, raftstore.ErrInvalid), errors.Is(err, api.ErrInvalid), errors.Is(err, ErrAmbiguous),
		errors.Is(err, raftstore.ErrEntryTooLarge):
		return codes.InvalidArgument
	case errors.Is(err, raftstore.ErrConflict), errors.Is(err, ErrPrecondition):
		return codes.FailedPrecondition
	case errors.Is(err, raftstore.ErrNotLeader), errors.Is(err, raftstore.ErrNoLeader):
		return codes.Unavailable
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Internal
}
