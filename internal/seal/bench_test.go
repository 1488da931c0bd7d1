package seal

import (
	"fmt"
	"io"
	"testing"
)

// BenchmarkSeal: sealing one log entry of typical sizes (a small command,
// a large spec); the figure to read beside BenchmarkApplyAtRest in
// raftstore.
func BenchmarkSeal(b *testing.B) {
	box, _ := NewBox(NewKey())
	for _, n := range []int{256, 4 << 10, 64 << 10} {
		msg := make([]byte, n)
		b.Run(fmt.Sprintf("%dB", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				box.Seal(msg)
			}
		})
	}
}

// BenchmarkStream: sealing a snapshot stream.
func BenchmarkStream(b *testing.B) {
	box, _ := NewBox(NewKey())
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		w, err := box.NewWriter(io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
