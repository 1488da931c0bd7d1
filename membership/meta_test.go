package membership

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/shoal-sched/shoal/api"
)

func sampleMeta() Meta {
	return Meta{
		NodeID:      "node-1",
		Hostname:    "host-1.example",
		Role:        api.RoleWorker,
		GRPCAddr:    "127.0.0.1:4243",
		NanoCPUs:    2_000_000_000,
		MemoryBytes: 8 << 30,
		Labels:      map[string]string{"zone": "a", "disk": "ssd"},
	}
}

func TestMetaRoundTrip(t *testing.T) {
	manager := sampleMeta()
	manager.Role = api.RoleManager
	leaving := sampleMeta()
	leaving.Leaving = true
	minimal := Meta{NodeID: "n", Role: api.RoleWorker}
	maxRes := sampleMeta()
	maxRes.NanoCPUs, maxRes.MemoryBytes = 1<<63-1, 1<<63-1
	unicode := sampleMeta()
	unicode.Labels = map[string]string{"région": "île-de-france", "empty": ""}

	for _, tc := range []struct {
		name string
		meta Meta
	}{
		{"worker", sampleMeta()},
		{"manager", manager},
		{"leaving", leaving},
		{"minimal", minimal},
		{"max resources", maxRes},
		{"unicode labels", unicode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeMeta(tc.meta)
			if err != nil {
				t.Fatalf("EncodeMeta: %v", err)
			}
			if len(b) > MetaMaxSize {
				t.Fatalf("encoded %d bytes, over %d", len(b), MetaMaxSize)
			}
			got, err := DecodeMeta(b)
			if err != nil {
				t.Fatalf("DecodeMeta: %v", err)
			}
			want := tc.meta
			want.Version = MetaVersion
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestEncodeMetaIsDeterministic(t *testing.T) {
	m := sampleMeta()
	m.Labels = map[string]string{}
	for i := range 20 {
		m.Labels[fmt.Sprintf("k%02d", i)] = "v"
	}
	first, err := EncodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		again, err := EncodeMeta(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatal("two encodings of the same Meta differ (label order must be sorted)")
		}
	}
}

func TestEncodeMetaErrors(t *testing.T) {
	big := sampleMeta()
	big.Labels = map[string]string{}
	for i := range 40 {
		big.Labels[fmt.Sprintf("label-%02d", i)] = strings.Repeat("x", 10)
	}
	for _, tc := range []struct {
		name    string
		mutate  func(*Meta)
		wantErr error
		wantMsg string
	}{
		{"too many labels", func(m *Meta) { *m = big }, ErrMetaTooLarge, "over the 512-byte limit"},
		{"empty node id", func(m *Meta) { m.NodeID = "" }, ErrInvalidMeta, "node_id is empty"},
		{"bad role", func(m *Meta) { m.Role = "boss" }, ErrInvalidMeta, `role "boss"`},
		{"negative cpu", func(m *Meta) { m.NanoCPUs = -1 }, ErrInvalidMeta, "nano_cpus -1"},
		{"negative memory", func(m *Meta) { m.MemoryBytes = -5 }, ErrInvalidMeta, "memory_bytes -5"},
		{"empty label key", func(m *Meta) { m.Labels[""] = "v" }, ErrInvalidMeta, "empty key"},
		{"invalid utf-8", func(m *Meta) { m.Hostname = "\xff" }, ErrInvalidMeta, "hostname"},
		{"grpc addr without port", func(m *Meta) { m.GRPCAddr = "10.0.0.1" }, ErrInvalidMeta, `grpc_addr "10.0.0.1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := sampleMeta()
			tc.mutate(&m)
			b, err := EncodeMeta(m)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("EncodeMeta error = %v, want %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("error %q does not mention %q", err, tc.wantMsg)
			}
			if b != nil {
				t.Fatalf("EncodeMeta returned %d bytes with an error", len(b))
			}
		})
	}
}

func TestEncodeMetaTooLargeNamesSize(t *testing.T) {
	m := sampleMeta()
	m.Labels = map[string]string{"big": strings.Repeat("y", MetaMaxSize)}
	_, err := EncodeMeta(m)
	if err == nil {
		t.Fatal("EncodeMeta accepted a label bigger than the limit")
	}
	// The message must name the actual size so an operator sees how far over it is.
	bare := m
	bare.Labels = nil
	// bare ends with a one-byte zero label count; the label adds a count byte,
	// "big" (1+3 bytes) and a 512-byte value with a two-byte length.
	want := fmt.Sprintf("encodes to %d bytes, over the 512-byte limit", len(mustEncode(t, bare))-1+1+4+2+MetaMaxSize)
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `"node-1"`) {
		t.Fatalf("error %q should name the node and say %q", err, want)
	}
}

func mustEncode(t *testing.T, m Meta) []byte {
	t.Helper()
	b, err := EncodeMeta(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeMetaErrors(t *testing.T) {
	good := mustEncode(t, sampleMeta())
	otherRole := sampleMeta()
	otherRole.Role = "boss"
	dupLabels := append(append([]byte{}, good[:len(good)-len(encodedLabels(t))]...), 2, 1, 'a', 1, 'x', 1, 'a', 1, 'y')
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"one byte", []byte{1}, "too short"},
		{"version zero", []byte{0, 0, 1, 'n', 6, 'w', 'o', 'r', 'k', 'e', 'r'}, "version 0"},
		{"truncated", good[:len(good)-4], "exceeds"}, // the keys version and 3 bytes of labels
		{"trailing bytes", append(append([]byte{}, good...), 0), "trailing"},
		{"huge string length", []byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, "node_id: length"},
		{"overlong varint", []byte{1, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, "varint"},
		{"huge label count", append(append([]byte{}, good[:len(good)-len(encodedLabels(t))]...), 0xff, 0xff, 0x03), "count"},
		{"duplicate label", dupLabels, "appears twice"},
		{"bad role", rawMeta(otherRole), `role "boss"`},
		{"too large", make([]byte, MetaMaxSize+1), "over the 512-byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeMeta(tc.in)
			if !errors.Is(err, ErrInvalidMeta) {
				t.Fatalf("DecodeMeta error = %v, want ErrInvalidMeta", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

// encodedLabels returns the label section of sampleMeta's encoding and
// the keys version after it.
func encodedLabels(t *testing.T) []byte {
	t.Helper()
	with := mustEncode(t, sampleMeta())
	m := sampleMeta()
	m.Labels = nil
	without := mustEncode(t, m)
	// without ends with a zero label count and the keys version; with has
	// count+pairs instead of the zero count. The result includes the keys
	// version, so that cutting it off leaves what precedes the labels.
	return with[len(without)-2:]
}

// rawMeta encodes m without validating it, as a buggy or hostile peer might.
func rawMeta(m Meta) []byte {
	b := []byte{MetaVersion, 0}
	for _, s := range []string{m.NodeID, m.Hostname, string(m.Role), m.GRPCAddr} {
		b = appendString(b, s)
	}
	return append(b, 0, 0, 0)
}

func TestDecodeMetaNewerVersionIgnoresAppendedFields(t *testing.T) {
	b := mustEncode(t, sampleMeta())
	b[0] = MetaVersion + 1
	b = append(b, 3, 'n', 'e', 'w')
	got, err := DecodeMeta(b)
	if err != nil {
		t.Fatalf("DecodeMeta of a newer version: %v", err)
	}
	want := sampleMeta()
	want.Version = MetaVersion + 1
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	leaving := sampleMeta()
	leaving.Leaving = true
	for _, m := range []Meta{sampleMeta(), leaving, {NodeID: "x", Role: api.RoleManager}} {
		b, err := EncodeMeta(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidMeta) {
				t.Fatalf("error %v does not wrap ErrInvalidMeta", err)
			}
			return
		}
		// Anything accepted must be valid and survive a re-encode.
		again, err := EncodeMeta(m)
		if err != nil {
			t.Fatalf("decoded %+v but cannot re-encode it: %v", m, err)
		}
		back, err := DecodeMeta(again)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		m.Version = MetaVersion
		if len(m.Labels) == 0 {
			m.Labels, back.Labels = nil, nil
		}
		if !reflect.DeepEqual(m, back) {
			t.Fatalf("re-encode changed meta:\n got %+v\nwant %+v", back, m)
		}
	})
}
