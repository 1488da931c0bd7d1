package ctl

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rpcError turns an error from the Control API into a sentence for people.
// subject says what the request was about (`service "web"`); it prefixes the
// manager's message unless the message already names it.
func rpcError(subject string, err error) error {
	if err == nil {
		return nil
	}
	var ue *unavailableError
	if errors.As(err, &ue) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	msg := st.Message()
	if subject != "" && !strings.Contains(msg, subjectName(subject)) {
		msg = subject + ": " + msg
	}
	switch st.Code() {
	case codes.NotFound, codes.AlreadyExists, codes.InvalidArgument, codes.FailedPrecondition:
		return &rpcErr{code: st.Code(), msg: msg}
	case codes.DeadlineExceeded:
		return &rpcErr{code: st.Code(), msg: msg + " (no answer within --timeout; raise it, or check the cluster with: shoalctl cluster status --stale)"}
	case codes.Canceled:
		return &rpcErr{code: st.Code(), msg: msg + " (canceled)"}
	case codes.Unimplemented:
		return &rpcErr{code: st.Code(), msg: msg + " (the manager does not know this request: is it an older version than shoalctl?)"}
	case codes.Unavailable:
		return &rpcErr{code: st.Code(), msg: msg + " (no leader or no quorum? check: shoalctl cluster status --stale)"}
	case codes.PermissionDenied, codes.Unauthenticated:
		return &rpcErr{code: st.Code(), msg: authError(msg, st.Code() == codes.Unauthenticated)}
	}
	return &rpcErr{code: st.Code(), msg: fmt.Sprintf("%s (%s)", msg, st.Code())}
}

// subjectName picks the quoted name out of a subject like `service "web"`.
func subjectName(subject string) string {
	if i := strings.IndexByte(subject, '"'); i >= 0 {
		return strings.Trim(subject[i:], `"`)
	}
	return subject
}

// rpcErr keeps the gRPC code so callers can still tell errors apart.
type rpcErr struct {
	code codes.Code
	msg  string
}

func (e *rpcErr) Error() string { return e.msg }

// GRPCStatus lets status.Code read the original code.
func (e *rpcErr) GRPCStatus() *status.Status { return status.New(e.code, e.msg) }
