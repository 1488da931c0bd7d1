package manager_test

import (
	"context"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/shoal-sched/shoal/authz"
	"github.com/shoal-sched/shoal/manager/managertest"
	"github.com/shoal-sched/shoal/pki"
	"github.com/shoal-sched/shoal/proto/shoalpb"
)

// hostileRounds is how many random requests every method gets, beside its
// empty request.
const hostileRounds = 40

// TestHostileRequestsCrashNothing sends every unary method of the control
// API (as an operator) and of the CA (with no certificate, as a stranger
// may) empty requests and requests filled with random values: no answer
// may crash the manager (a panic in a handler ends this test's process),
// and the cluster must still take a write afterwards.
func TestHostileRequestsCrashNothing(t *testing.T) {
	c := managertest.StartCluster(t, 1, managertest.Options{})
	op := c.Credentials(pki.RoleOperator)
	control := shoalpb.NewControlClient(dial(t, c.Addr(0), c.DialOptions(op)))
	stranger := shoalpb.NewNodeCAClient(dial(t, c.Addr(0), authz.DialOptions(noCertTLS(op))))
	rng := rand.New(rand.NewPCG(1, 2))
	answered := map[string]int{}
	t.Cleanup(func() { t.Logf("answers: %v", answered) })

	for _, target := range []struct {
		client any
		desc   *grpc.ServiceDesc
	}{{control, &shoalpb.Control_ServiceDesc}, {stranger, &shoalpb.NodeCA_ServiceDesc}} {
		for _, m := range target.desc.Methods {
			if skipHostile[m.MethodName] {
				continue
			}
			call := reflect.ValueOf(target.client).MethodByName(m.MethodName)
			for round := range hostileRounds + 1 {
				req := reflect.New(call.Type().In(1).Elem()).Interface().(proto.Message)
				if round > 0 {
					fillRandom(req.ProtoReflect(), rng, 0)
				}
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				out := call.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(req)})
				cancel()
				answered[m.MethodName+" "+status.Code(errOf(out)).String()]++
			}
		}
	}

	// No create was accepted, so none may have left anything behind.
	if answered["CreateService OK"] == 0 {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		services, err := control.ListServices(ctx, &shoalpb.ListServicesRequest{})
		cancel()
		if err != nil || len(services.GetServices()) != 0 {
			t.Fatalf("rejected creates left services behind: %v, %v", services.GetServices(), err)
		}
	}

	hostileSessions(t, c, rng)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := control.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
		Name: "after-the-storm", Image: "busybox", Mode: "replicated", Replicas: 1,
	}}); err != nil {
		t.Fatalf("a valid write after the hostile requests: %v", err)
	}
}

// hostileSessions opens dispatcher sessions as a worker and sends random
// agent messages: random hellos, status updates about real and made-up
// tasks of other nodes, resyncs, restarts, in any order.
func hostileSessions(t *testing.T, c *managertest.Cluster, rng *rand.Rand) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	control := c.Client(0)
	if _, err := control.CreateService(ctx, &shoalpb.CreateServiceRequest{Spec: &shoalpb.ServiceSpec{
		Name: "target", Image: "busybox", Mode: "replicated", Replicas: 3,
	}}); err != nil {
		t.Fatal(err)
	}
	tasks, err := control.ListTasks(ctx, &shoalpb.ListTasksRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks.GetTasks() {
		hostileIDs = append(hostileIDs, task.GetId())
	}
	worker := shoalpb.NewDispatcherClient(dial(t, c.Addr(0), c.DialOptions(c.Credentials(pki.RoleWorker))))
	for range 20 {
		sctx, scancel := context.WithTimeout(ctx, 2*time.Second)
		stream, err := worker.Session(sctx)
		if err != nil {
			scancel()
			t.Fatalf("open a session: %v", err)
		}
		go func() { // drain what the leader sends, until the stream ends
			for {
				if _, err := stream.Recv(); err != nil {
					return
				}
			}
		}()
		for range 20 {
			msg := &shoalpb.AgentMessage{}
			fillRandom(msg.ProtoReflect(), rng, 0)
			if stream.Send(msg) != nil {
				break
			}
		}
		_ = stream.CloseSend()
		scancel()
	}
}

// hostileIDs are real object IDs that random strings pick from now and
// then, so that hostile requests also reach past the lookups.
var hostileIDs []string

func errOf(out []reflect.Value) error {
	err, _ := out[1].Interface().(error)
	return err
}

// skipHostile are the methods whose valid random requests would end the
// test's cluster on purpose rather than show a defect: a join of a random
// address as a voter breaks the one-manager quorum by design of Raft.
var skipHostile = map[string]bool{"JoinManager": true}

// fillRandom sets every field of m to a random value: strings of random
// bytes and lengths (some with shoal's separators), numbers across their
// range, a few list and map entries, nested messages down to depth 3.
func fillRandom(m protoreflect.Message, rng *rand.Rand, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.ContainingOneof() != nil && rng.IntN(2) == 0 {
			continue
		}
		switch {
		case fd.IsList():
			list := m.Mutable(fd).List()
			for range rng.IntN(4) {
				if fd.Kind() == protoreflect.MessageKind {
					if depth < 3 {
						fillRandom(list.AppendMutable().Message(), rng, depth+1)
					}
					continue
				}
				list.Append(randomScalar(fd, rng))
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range rng.IntN(4) {
				key := randomScalar(fd.MapKey(), rng).MapKey()
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					if depth < 3 {
						fillRandom(mp.Mutable(key).Message(), rng, depth+1)
					}
					continue
				}
				mp.Set(key, randomScalar(fd.MapValue(), rng))
			}
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			if depth < 3 && rng.IntN(4) != 0 {
				fillRandom(m.Mutable(fd).Message(), rng, depth+1)
			}
		default:
			m.Set(fd, randomScalar(fd, rng))
		}
	}
}

func randomScalar(fd protoreflect.FieldDescriptor, rng *rand.Rand) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(rng.IntN(2) == 0)
	case protoreflect.EnumKind:
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(rng.Int32N(8) - 1))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(randomInt(rng)))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(randomInt(rng))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(randomInt(rng)))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(randomInt(rng)))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(float32(randomInt(rng)) / 3)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(float64(randomInt(rng)) / 3)
	case protoreflect.BytesKind:
		return protoreflect.ValueOfBytes([]byte(randomString(rng)))
	default:
		return protoreflect.ValueOfString(randomString(rng))
	}
}

// randomInt is often an edge: 0, ±1, the extremes, or anything.
func randomInt(rng *rand.Rand) int64 {
	edges := []int64{0, 1, -1, 1 << 31, -1 << 31, 1<<63 - 1, -1 << 63, 1 << 40}
	if rng.IntN(2) == 0 {
		return edges[rng.IntN(len(edges))]
	}
	return rng.Int64() - rng.Int64()
}

// randomString mixes the characters shoal's parsers split on with random
// characters, at lengths up to a few KiB.
func randomString(rng *rand.Rand) string {
	pieces := []string{"", "=", ",", ":", "/", "..", "{{", "}}", "{{.Task.Slot}}", "web", "a=b", "node.role==manager", "\x00", "é", "%s", "-1", "10.0.0.1/8", "0s", "1h"}
	var b strings.Builder
	n := rng.IntN(6)
	if rng.IntN(10) == 0 {
		n = 400
	}
	for range n {
		if len(hostileIDs) > 0 && rng.IntN(4) == 0 {
			b.WriteString(hostileIDs[rng.IntN(len(hostileIDs))])
			continue
		}
		if rng.IntN(3) == 0 {
			b.WriteRune(rune(rng.IntN(0x800))) // valid UTF-8: proto refuses other strings before they leave
			continue
		}
		b.WriteString(pieces[rng.IntN(len(pieces))])
	}
	return b.String()
}
