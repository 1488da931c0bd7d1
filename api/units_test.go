package api

import (
	"math"
	"strings"
	"testing"
)

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "1048576", want: 1 << 20},
		{in: "100b", want: 100},
		{in: "512k", want: 512 << 10},
		{in: "512K", want: 512 << 10},
		{in: "64M", want: 64 << 20},
		{in: "64m", want: 64 << 20},
		{in: "64MB", want: 64 << 20},
		{in: "128Mi", want: 128 << 20},
		{in: "128MiB", want: 128 << 20},
		{in: "64 MiB", want: 64 << 20},
		{in: "1G", want: 1 << 30},
		{in: "1Gi", want: 1 << 30},
		{in: "1.5G", want: 3 << 29},
		{in: ".5k", want: 512},
		{in: "2T", want: 2 << 40},
		{in: "1P", want: 1 << 50},
		{in: "1.0000000001k", want: 1024},
		{in: "12Q", wantErr: `unknown unit "Q" (use K, M, G or Ki, Mi, Gi)`},
		{in: "12i", wantErr: `unknown unit "i"`},
		{in: "12MM", wantErr: `unknown unit "MM"`},
		{in: "12 ", wantErr: `unknown unit " "`},
		{in: "", wantErr: "empty value"},
		{in: "-5M", wantErr: "must not be negative"},
		{in: "M", wantErr: "must start with a number"},
		{in: "1.2.3M", wantErr: "not a number"},
		{in: ".M", wantErr: "not a number"},
		{in: "1.5", wantErr: "whole number"},
		{in: "7EiB", want: 7 << 60},
		{in: "8E", wantErr: "too large"},
		{in: "12Z", wantErr: `unknown unit "Z"`},
		{in: "9000P", wantErr: "too large"},
		{in: "9223372036854775808", wantErr: "too large"},
		{in: strings.Repeat("9", 41), wantErr: "too many digits"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseMemory(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMemory(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseMemory(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseCPUs(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string
	}{
		{in: "0", want: 0},
		{in: "0.5", want: 500_000_000},
		{in: ".25", want: 250_000_000},
		{in: "1", want: 1_000_000_000},
		{in: "2.", want: 2_000_000_000},
		{in: "1.000000001", want: 1_000_000_001},
		{in: "0.000000001", want: 1},
		{in: "9223372035.999999999", want: 9223372035_999999999},
		{in: "9223372036", wantErr: "too large"},
		{in: "99999999999999999999999", wantErr: "too large"},
		{in: "0.0000000001", wantErr: "at most 9 decimals"},
		{in: "-1", wantErr: "must not be negative"},
		{in: "", wantErr: "empty value"},
		{in: "1e3", wantErr: "not a decimal number"},
		{in: "+1", wantErr: "not a decimal number"},
		{in: "one", wantErr: "not a decimal number"},
		{in: ".", wantErr: "not a number"},
		{in: "1.2.3", wantErr: "not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseCPUs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseCPUs(%q) = %d, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseCPUs(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatCPUs(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"}, {500_000_000, "0.5"}, {2_000_000_000, "2"}, {1, "0.000000001"},
		{1_250_000_000, "1.25"}, {-500_000_000, "-0.5"},
	}
	for _, tt := range tests {
		if got := FormatCPUs(tt.in); got != tt.want {
			t.Errorf("FormatCPUs(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFormatMemory(t *testing.T) {
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0B"}, {100, "100B"}, {1024, "1KiB"}, {64 << 20, "64MiB"}, {3 << 29, "1.5GiB"},
		{1<<30 + 1, "1GiB"}, {-(64 << 20), "-64MiB"}, {math.MaxInt64, "8EiB"},
	}
	for _, tt := range tests {
		if got := FormatMemory(tt.in); got != tt.want {
			t.Errorf("FormatMemory(%d) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzParseMemory checks that ParseMemory never panics, never returns a
// negative size, and reads back what FormatMemory writes (which rounds to
// two decimals of its unit, so within 1%).
func FuzzParseMemory(f *testing.F) {
	for _, s := range []string{"64M", "128Mi", "1.5GiB", "512k", "1048576", "12Q", "", "-1", ".5k", "9000P"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseMemory(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseMemory(%q) = %d with error %v", s, n, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseMemory(%q) = %d, negative", s, n)
		}
		if n > 1<<62 {
			return // rounding may carry past the largest size
		}
		back, err := ParseMemory(FormatMemory(n))
		if diff := back - n; err != nil || diff > n/100+1 || -diff > n/100+1 {
			t.Fatalf("round trip of %d via %q = %d, %v", n, FormatMemory(n), back, err)
		}
	})
}

// FuzzParseCPUs checks ParseCPUs against FormatCPUs: every accepted value
// formats to text that parses back to the same amount.
func FuzzParseCPUs(f *testing.F) {
	for _, s := range []string{"0.5", "2", ".25", "1.000000001", "0.0000000001", "-1", "1e3", "", "9223372036"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseCPUs(s)
		if err != nil {
			if n != 0 {
				t.Fatalf("ParseCPUs(%q) = %d with error %v", s, n, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseCPUs(%q) = %d, negative", s, n)
		}
		back, err := ParseCPUs(FormatCPUs(n))
		if err != nil || back != n {
			t.Fatalf("round trip of %d via %q = %d, %v", n, FormatCPUs(n), back, err)
		}
	})
}
