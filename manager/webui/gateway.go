package webui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// ErrRequest is wrapped by every error in a gateway request's query.
var ErrRequest = errors.New("bad request")

// rpc is one Control method the gateway serves: its full gRPC name (for
// the authorisation table), a fresh request, and the call through the
// Control client. A unary call returns its response; a streaming one is
// opened (open returns once the server has sent its headers, which the
// events stream does once it is subscribed) and then read with recv.
type rpc struct {
	fullName string
	request  func() proto.Message
	unary    func(ctx context.Context, c shoalpb.ControlClient, req proto.Message) (proto.Message, error)
	open     func(ctx context.Context, c shoalpb.ControlClient, req proto.Message) (recv func() (proto.Message, error), err error)
}

// unaryCall adapts a ControlClient method (a method expression such as
// shoalpb.ControlClient.ListNodes) to an rpc.
func unaryCall[Req any, PReq interface {
	*Req
	proto.Message
}, Resp proto.Message](fullName string, f func(shoalpb.ControlClient, context.Context, PReq, ...grpc.CallOption) (Resp, error)) rpc {
	return rpc{
		fullName: fullName,
		request:  func() proto.Message { return PReq(new(Req)) },
		unary: func(ctx context.Context, c shoalpb.ControlClient, req proto.Message) (proto.Message, error) {
			return f(c, ctx, req.(PReq))
		},
	}
}

// streamCall adapts a server-streaming ControlClient method to an rpc.
func streamCall[Req any, PReq interface {
	*Req
	proto.Message
}, Msg any](fullName string, f func(shoalpb.ControlClient, context.Context, PReq, ...grpc.CallOption) (grpc.ServerStreamingClient[Msg], error)) rpc {
	return rpc{
		fullName: fullName,
		request:  func() proto.Message { return PReq(new(Req)) },
		open: func(ctx context.Context, c shoalpb.ControlClient, req proto.Message) (func() (proto.Message, error), error) {
			s, err := f(c, ctx, req.(PReq))
			if err != nil {
				return nil, err
			}
			// Header returns once the server sent its headers or the
			// stream ended without any (a bad filter, a refusal): that
			// failure is then the call's error, answered with its HTTP
			// status instead of an event stream.
			md, err := s.Header()
			if err != nil {
				return nil, err
			}
			if md == nil {
				if _, err := s.Recv(); err != nil && !errors.Is(err, io.EOF) {
					return nil, err
				}
				return func() (proto.Message, error) { return nil, io.EOF }, nil
			}
			return func() (proto.Message, error) {
				msg, err := s.Recv()
				if err != nil {
					return nil, err
				}
				return any(msg).(proto.Message), nil
			}, nil
		},
	}
}

// reads are the methods the gateway serves on GET: the Control API's
// reads, one to one, under their gRPC names. The writes the UI makes are
// in write.go, on POST.
var reads = map[string]rpc{
	"ClusterStatus": unaryCall(shoalpb.Control_ClusterStatus_FullMethodName, shoalpb.ControlClient.ClusterStatus),
	"ListNodes":     unaryCall(shoalpb.Control_ListNodes_FullMethodName, shoalpb.ControlClient.ListNodes),
	"GetNode":       unaryCall(shoalpb.Control_GetNode_FullMethodName, shoalpb.ControlClient.GetNode),
	"ListServices":  unaryCall(shoalpb.Control_ListServices_FullMethodName, shoalpb.ControlClient.ListServices),
	"GetService":    unaryCall(shoalpb.Control_GetService_FullMethodName, shoalpb.ControlClient.GetService),
	"ListTasks":     unaryCall(shoalpb.Control_ListTasks_FullMethodName, shoalpb.ControlClient.ListTasks),
	"ListNetworks":  unaryCall(shoalpb.Control_ListNetworks_FullMethodName, shoalpb.ControlClient.ListNetworks),
	"GetNetwork":    unaryCall(shoalpb.Control_GetNetwork_FullMethodName, shoalpb.ControlClient.GetNetwork),
	"Events":        streamCall(shoalpb.Control_Events_FullMethodName, shoalpb.ControlClient.Events),
	"Watch":         streamCall(shoalpb.Control_Watch_FullMethodName, shoalpb.ControlClient.Watch),
	"ServiceLogs":   streamCall(shoalpb.Control_ServiceLogs_FullMethodName, shoalpb.ControlClient.ServiceLogs),
}

// maxQueryValues bounds the values of one query, so a request cannot make
// the gateway build a huge message.
const maxQueryValues = 64

// fillRequest sets req's fields from a URL query: each key is a field's
// proto or JSON name, each value parsed for the field's kind; a repeated
// string field takes the key more than once.
func fillRequest(req proto.Message, q url.Values) error {
	m := req.ProtoReflect()
	fields := m.Descriptor().Fields()
	n := 0
	for key, vals := range q {
		n += len(vals)
		if n > maxQueryValues {
			return fmt.Errorf("%w: more than %d query values", ErrRequest, maxQueryValues)
		}
		fd := fields.ByName(protoreflect.Name(key))
		if fd == nil {
			fd = fields.ByJSONName(key)
		}
		if fd == nil {
			return fmt.Errorf("%w: %s has no field %q (fields: %s)", ErrRequest, m.Descriptor().Name(), key, fieldNames(fields))
		}
		if err := setField(m, fd, vals); err != nil {
			return fmt.Errorf("%w: field %s: %w", ErrRequest, key, err)
		}
	}
	return nil
}

func fieldNames(fields protoreflect.FieldDescriptors) string {
	var names []string
	for i := range fields.Len() {
		names = append(names, string(fields.Get(i).Name()))
	}
	return strings.Join(names, ", ")
}

func setField(m protoreflect.Message, fd protoreflect.FieldDescriptor, vals []string) error {
	if fd.IsList() {
		if fd.Kind() != protoreflect.StringKind {
			return fmt.Errorf("a list of %s cannot be given in a query", fd.Kind())
		}
		l := m.Mutable(fd).List()
		for _, v := range vals {
			l.Append(protoreflect.ValueOfString(v))
		}
		return nil
	}
	if len(vals) != 1 {
		return fmt.Errorf("given %d times; it takes one value", len(vals))
	}
	v, err := scalar(fd, vals[0])
	if err != nil {
		return err
	}
	m.Set(fd, v)
	return nil
}

// scalar parses s as a value of fd's kind.
func scalar(fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(s), nil
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("%q is not true or false", s)
		}
		return protoreflect.ValueOfBool(b), nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		i, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("%q is not an integer", s)
		}
		return protoreflect.ValueOfInt64(i), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		u, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("value %q is not an integer from 0 to %d", s, uint64(math.MaxUint64))
		}
		return protoreflect.ValueOfUint64(u), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		u, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("value %q is not an integer from 0 to %d", s, uint32(math.MaxUint32))
		}
		return protoreflect.ValueOfUint32(uint32(u)), nil
	}
	return protoreflect.Value{}, fmt.Errorf("a %s cannot be given in a query", fd.Kind())
}

// marshal is the JSON of a response: the proto field names, as shoalctl's
// --format json prints them, with empty fields left out.
var marshal = protojson.MarshalOptions{UseProtoNames: true}

// httpStatus maps a gRPC error to the HTTP status the gateway answers with.
func httpStatus(err error) int {
	if errors.Is(err, ErrRequest) {
		return http.StatusBadRequest
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.OutOfRange, codes.FailedPrecondition:
		return http.StatusBadRequest
	case codes.NotFound:
		return http.StatusNotFound
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.Unavailable, codes.ResourceExhausted:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Canceled:
		return 499
	}
	return http.StatusInternalServerError
}

// errorBody is the JSON of an error: the message and, for an error of the
// gRPC call, its code's name.
func errorBody(err error) []byte {
	msg, code := err.Error(), ""
	if s, ok := status.FromError(err); ok && !errors.Is(err, ErrRequest) {
		msg, code = s.Message(), s.Code().String()
	}
	b, _ := json.Marshal(struct {
		Error string `json:"error"`
		Code  string `json:"code,omitempty"`
	}{msg, code})
	return append(b, '\n')
}
