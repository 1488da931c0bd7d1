package controlapi_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/shoal-sched/shoal/api"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/proto/shoalpb"
	"github.com/shoal-sched/shoal/raftstore"
)

// TestListTasksPages: pages of any size add up to the unpaged list, in its
// order, and a bad page_size or token is refused with the field named.
func TestListTasksPages(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	cl := c.Client(c.WaitLeader(waitTimeout))
	idle := spec("web")
	idle.Replicas = 0
	web, err := cl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: idle})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var tasks []*api.Task
	for i := range 23 {
		tasks = append(tasks, &api.Task{ID: fmt.Sprintf("task-%02d", i), ServiceID: web.GetService().GetId(), ServiceName: "web",
			Slot: uint64(i%7 + 1), SpecVersion: 1, DesiredState: api.TaskShutdown, CreatedAt: now.Add(time.Duration(i))})
	}
	apply(t, c, raftstore.WriteTasks{Create: tasks, At: now})
	all, err := cl.ListTasks(t.Context(), &shoalpb.ListTasksRequest{})
	if err != nil || len(all.GetTasks()) != 23 || all.GetNextPageToken() != "" {
		t.Fatalf("unpaged: %d tasks, token %q, %v", len(all.GetTasks()), all.GetNextPageToken(), err)
	}
	ids := func(ts []*shoalpb.Task) (out []string) {
		for _, t := range ts {
			out = append(out, t.GetId())
		}
		return out
	}
	for _, size := range []uint32{1, 5, 23, 100} {
		var got []*shoalpb.Task
		req := &shoalpb.ListTasksRequest{PageSize: size}
		for pages := 0; ; pages++ {
			if pages > 30 {
				t.Fatalf("page size %d: more than 30 pages", size)
			}
			resp, err := cl.ListTasks(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, resp.GetTasks()...)
			if resp.GetNextPageToken() == "" {
				break
			}
			req.PageToken = resp.GetNextPageToken()
		}
		if !slices.Equal(ids(got), ids(all.GetTasks())) {
			t.Fatalf("page size %d: %v, want %v", size, ids(got), ids(all.GetTasks()))
		}
	}
	_, err = cl.ListTasks(t.Context(), &shoalpb.ListTasksRequest{PageSize: 20000})
	wantCode(t, err, codes.InvalidArgument, "page_size 20000", "10000")
	_, err = cl.ListTasks(t.Context(), &shoalpb.ListTasksRequest{PageSize: 2, PageToken: "!!"})
	wantCode(t, err, codes.InvalidArgument, "page_token")
}

// TestListServicesNodesPages: services and nodes come out whole and in
// order through pages of any size; bad sizes and tokens name the field.
func TestListServicesNodesPages(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	cl := c.Client(c.WaitLeader(waitTimeout))
	for i := range 7 {
		s := spec(fmt.Sprintf("svc%d", i))
		s.Replicas = 0
		if _, err := cl.CreateService(t.Context(), &shoalpb.CreateServiceRequest{Spec: s}); err != nil {
			t.Fatal(err)
		}
		apply(t, c, raftstore.UpsertNode{Node: &api.Node{ID: fmt.Sprintf("paged-node-%d", i), Hostname: fmt.Sprintf("host-%d", i),
			Status: api.NodeDown, Availability: api.AvailabilityActive}})
	}
	all, err := cl.ListServices(t.Context(), &shoalpb.ListServicesRequest{})
	if err != nil || len(all.GetServices()) != 7 || all.GetNextPageToken() != "" {
		t.Fatalf("unpaged services: %d, token %q, %v", len(all.GetServices()), all.GetNextPageToken(), err)
	}
	allNodes, err := cl.ListNodes(t.Context(), &shoalpb.ListNodesRequest{})
	if err != nil || allNodes.GetNextPageToken() != "" {
		t.Fatal(err)
	}
	for _, size := range []uint32{1, 3, 7, 50} {
		var svcs, nodes []string
		sreq, nreq := &shoalpb.ListServicesRequest{PageSize: size}, &shoalpb.ListNodesRequest{PageSize: size}
		for pages := 0; sreq != nil || nreq != nil; pages++ {
			if pages > 20 {
				t.Fatalf("page size %d: more than 20 pages", size)
			}
			if sreq != nil {
				resp, err := cl.ListServices(t.Context(), sreq)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range resp.GetServices() {
					svcs = append(svcs, s.GetService().GetId())
				}
				if sreq.PageToken = resp.GetNextPageToken(); sreq.PageToken == "" {
					sreq = nil
				}
			}
			if nreq != nil {
				resp, err := cl.ListNodes(t.Context(), nreq)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range resp.GetNodes() {
					nodes = append(nodes, n.GetNode().GetId())
				}
				if nreq.PageToken = resp.GetNextPageToken(); nreq.PageToken == "" {
					nreq = nil
				}
			}
		}
		var wantS, wantN []string
		for _, s := range all.GetServices() {
			wantS = append(wantS, s.GetService().GetId())
		}
		for _, n := range allNodes.GetNodes() {
			wantN = append(wantN, n.GetNode().GetId())
		}
		if !slices.Equal(svcs, wantS) || !slices.Equal(nodes, wantN) {
			t.Fatalf("page size %d: services %v nodes %v, want %v and %v", size, svcs, nodes, wantS, wantN)
		}
	}
	_, err = cl.ListServices(t.Context(), &shoalpb.ListServicesRequest{PageSize: 20000})
	wantCode(t, err, codes.InvalidArgument, "page_size 20000", "10000")
	_, err = cl.ListNodes(t.Context(), &shoalpb.ListNodesRequest{PageSize: 10001})
	wantCode(t, err, codes.InvalidArgument, "page_size 10001", "10000")
	_, err = cl.ListNodes(t.Context(), &shoalpb.ListNodesRequest{PageSize: 2, PageToken: "!!"})
	wantCode(t, err, codes.InvalidArgument, "page_token", "ListNodes")
	_, err = cl.ListServices(t.Context(), &shoalpb.ListServicesRequest{PageSize: 2, PageToken: "!!"})
	wantCode(t, err, codes.InvalidArgument, "page_token", "ListServices")
}
