package shoalpb_test

import (
	"context"
	"net"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// bigList answers ListTasks with more than gRPC's default 4 MiB.
type bigList struct {
	shoalpb.UnimplementedControlServer
	tasks int
}

func (b bigList) ListTasks(context.Context, *shoalpb.ListTasksRequest) (*shoalpb.ListTasksResponse, error) {
	out := &shoalpb.ListTasksResponse{}
	for range b.tasks {
		out.Tasks = append(out.Tasks, &shoalpb.Task{Id: strings.Repeat("t", 25), Spec: &shoalpb.ServiceSpec{Image: strings.Repeat("i", 600)}})
	}
	return out, nil
}

func TestLargeTaskListPasses(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(shoalpb.ServerOptions()...)
	shoalpb.RegisterControlServer(srv, bigList{tasks: 10000})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	for _, tc := range []struct {
		name   string
		opts   []grpc.DialOption
		wantOK bool
	}{
		{"grpc defaults refuse it", nil, false},
		{"shoal call options", []grpc.DialOption{shoalpb.CallOptions()}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := grpc.NewClient(lis.Addr().String(), append(tc.opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			resp, err := shoalpb.NewControlClient(conn).ListTasks(t.Context(), &shoalpb.ListTasksRequest{})
			if tc.wantOK && (err != nil || len(resp.GetTasks()) != 10000) {
				t.Fatalf("ListTasks of 10,000 tasks: %v (%d tasks)", err, len(resp.GetTasks()))
			}
			if !tc.wantOK && err == nil {
				t.Fatal("a 6 MB answer passed gRPC's 4 MiB default: the test no longer shows the limit")
			}
		})
	}
}
