package stack

import "testing"

// BenchmarkLoadFull measures reading the full fixture (four services,
// every supported key, .env and an env_file) into specs.
func BenchmarkLoadFull(b *testing.B) {
	opts := Options{Name: "st", Files: []string{"testdata/full/compose.yaml"}}
	for b.Loop() {
		if _, err := Load(b.Context(), opts); err != nil {
			b.Fatal(err)
		}
	}
}
