package containerd

import (
	"context"
	"testing"
	"time"

	"github.com/containerd/containerd/v2/core/images"
)

// BenchmarkCreateStart measures Create + Start of a busybox container
// (image already pulled); stopping and removing it is not counted.
func BenchmarkCreateStart(b *testing.B) {
	e := newEnv(b)
	ctx := b.Context()
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		task := e.task(b, "sleep", "60")
		b.StartTimer()
		start := time.Now()
		if err := e.rt.Create(ctx, task); err != nil {
			b.Fatal(err)
		}
		if err := e.rt.Start(ctx, task.ID); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
		b.StopTimer()
		if err := e.rt.Remove(ctx, task.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/create+start")
}

// BenchmarkRunToExit measures a whole short task: Create, Start, Wait for
// `true` to exit, Remove.
func BenchmarkRunToExit(b *testing.B) {
	e := newEnv(b)
	ctx := b.Context()
	for b.Loop() {
		b.StopTimer()
		task := e.task(b, "true")
		b.StartTimer()
		e.run(b, task)
		if st := e.wait(b, task.ID); st.Code != 0 {
			b.Fatalf("exit %+v", st)
		}
		if err := e.rt.Remove(ctx, task.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStopRemove measures stopping (a TERM-handling shell) and
// removing a running container.
func BenchmarkStopRemove(b *testing.B) {
	e := newEnv(b)
	ctx := b.Context()
	for b.Loop() {
		b.StopTimer()
		task := e.task(b, "sh", "-c", "trap 'exit 0' TERM; echo ready; while true; do sleep 0.05; done")
		e.run(b, task)
		eventually(b, 10*time.Second, "ready", func() bool { return len(e.logsOf(b, task.ID)) > 0 })
		b.StartTimer()
		if err := e.rt.Stop(ctx, task.ID, 10*time.Second); err != nil {
			b.Fatal(err)
		}
		if err := e.rt.Remove(ctx, task.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPull measures pulling and unpacking the busybox image (about
// 1 MB compressed) from a loopback registry into an empty store.
func BenchmarkPull(b *testing.B) {
	e := newEnv(b)
	ctx := e.rt.nsCtx(b.Context())
	name, err := ref(e.registry.Image)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		// A synchronous delete runs the garbage collection, so the
		// content and the unpacked snapshots go too.
		if err := e.rt.client.ImageService().Delete(ctx, name, images.SynchronousDelete()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := e.rt.Pull(ctx, e.registry.Image); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHealthProbe measures one health probe (Exec of `true` in a
// running container: the containerd exec, the runc process, the output
// FIFOs), beside the run of a whole short container as the baseline: a
// probe costs what its interval pays on every task.
func BenchmarkHealthProbe(b *testing.B) {
	e := newEnv(b)
	ctx := b.Context()
	task := e.task(b, "sleep", "3600")
	e.run(b, task)
	b.Cleanup(func() { _ = e.rt.Remove(context.WithoutCancel(ctx), task.ID) })
	b.Run("exec", func(b *testing.B) {
		for b.Loop() {
			if code, _, err := e.rt.Exec(ctx, task.ID, []string{"true"}); err != nil || code != 0 {
				b.Fatalf("exec: %d, %v", code, err)
			}
		}
	})
	b.Run("baseline_run_to_exit", func(b *testing.B) {
		for b.Loop() {
			t := e.task(b, "true")
			e.run(b, t)
			if st := e.wait(b, t.ID); st.Code != 0 {
				b.Fatalf("exit %+v", st)
			}
			if err := e.rt.Remove(ctx, t.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
}
