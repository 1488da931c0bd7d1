package stack

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadCompose feeds malformed compose files to Load: it must return an
// error or a stack, never panic, and a stack it returns must be in
// dependency order with names from the stack.
func FuzzLoadCompose(f *testing.F) {
	for _, dir := range []string{"full", "abc", "container", "unsupported", "cycle", "merge", "profiles"} {
		b, err := os.ReadFile(filepath.Join("testdata", dir, "compose.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "services:", "services: []", "services:\n  a:\n", "services:\n  a: 1\n",
		"services:\n  a:\n    image: x\n    depends_on: 3\n",
		"services:\n  a:\n    image: x\n    volumes: [':::']\n",
		"services:\n  a:\n    image: x\n    deploy: {replicas: -1}\n",
		"services:\n  a:\n    image: x\n    deploy: {resources: {limits: {cpus: 'NaN'}}}\n",
		"services:\n  a:\n    image: x\n    links: [b]\n  b:\n    image: x\n    links: [a]\n",
		"services:\n  a: &a\n    image: x\n  b: *a\n",
		"[1, 2", "\t- x", "services:\n  a:\n    image: ${",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "compose.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		st, err := Load(t.Context(), Options{Name: "fz", Files: []string{path}})
		if err != nil {
			if st != nil {
				t.Fatalf("Load returned a stack and an error: %v", err)
			}
			return
		}
		seen := map[string]bool{}
		for _, s := range st.Services {
			for _, d := range s.DependsOn {
				if !seen[d.Service] {
					t.Fatalf("%s comes before its dependency %s", s.Name, d.Service)
				}
			}
			seen[s.Name] = true
		}
	})
}
