package main

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// cpuProfile is a CPU profile (the pprof format, as /debug/pprof/profile
// serves it) reduced to what the benchmarks attribute: each sample's CPU
// time and the functions on its stack.
type cpuProfile struct {
	samples []cpuSample
}

type cpuSample struct {
	cpu   time.Duration
	funcs []string // innermost first
}

// fetchCPUProfile takes a CPU profile of the process serving debug at
// addr over d.
func fetchCPUProfile(ctx context.Context, addr string, d time.Duration) (*cpuProfile, error) {
	ctx, cancel := context.WithTimeout(ctx, d+30*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	z, err := gzip.NewReader(resp.Body)
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(z)
	if err != nil {
		return nil, err
	}
	if dir := os.Getenv("SHOAL_BENCH_PROFILE_DIR"); dir != "" {
		// Kept for go tool pprof (which reads it uncompressed too).
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("leader-%s.pprof", time.Now().Format("150405.000"))), data, 0o644)
	}
	return parseCPUProfile(data)
}

// under sums the CPU of the samples with a function on their stack whose
// name contains one of in and, when also is set, another whose name
// contains one of also.
func (p *cpuProfile) under(in []string, also ...string) time.Duration {
	var sum time.Duration
	has := func(s cpuSample, subs []string) bool {
		for _, f := range s.funcs {
			for _, sub := range subs {
				if strings.Contains(f, sub) {
					return true
				}
			}
		}
		return false
	}
	for _, s := range p.samples {
		if has(s, in) && (len(also) == 0 || has(s, also)) {
			sum += s.cpu
		}
	}
	return sum
}

// parseCPUProfile reads the uncompressed profile.proto message: samples
// (field 2: location ids 1, values 2), locations (4: id 1, lines 4 whose
// function id is 1), functions (5: id 1, name 2) and the string table (6).
func parseCPUProfile(data []byte) (*cpuProfile, error) {
	type rawSample struct {
		locs   []uint64
		values []int64
	}
	var (
		samples []rawSample
		locs    = map[uint64][]uint64{} // location -> functions
		funcs   = map[uint64]int64{}    // function -> name's string index
		strs    []string
	)
	err := eachField(data, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch num {
		case 2:
			var s rawSample
			err := eachField(v, func(n protowire.Number, t protowire.Type, b []byte, x uint64) error {
				switch n {
				case 1:
					s.locs = appendUints(s.locs, t, b, x)
				case 2:
					for _, u := range appendUints(nil, t, b, x) {
						s.values = append(s.values, int64(u))
					}
				}
				return nil
			})
			samples = append(samples, s)
			return err
		case 4:
			var id uint64
			var fns []uint64
			err := eachField(v, func(n protowire.Number, t protowire.Type, b []byte, x uint64) error {
				switch n {
				case 1:
					id = x
				case 4:
					return eachField(b, func(n protowire.Number, _ protowire.Type, _ []byte, x uint64) error {
						if n == 1 {
							fns = append(fns, x)
						}
						return nil
					})
				}
				return nil
			})
			locs[id] = fns
			return err
		case 5:
			var id uint64
			var name int64
			err := eachField(v, func(n protowire.Number, _ protowire.Type, _ []byte, x uint64) error {
				switch n {
				case 1:
					id = x
				case 2:
					name = int64(x)
				}
				return nil
			})
			funcs[id] = name
			return err
		case 6:
			strs = append(strs, string(v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p := &cpuProfile{}
	for _, s := range samples {
		if len(s.values) == 0 {
			continue
		}
		// A CPU profile's values are samples and nanoseconds: the last.
		cs := cpuSample{cpu: time.Duration(s.values[len(s.values)-1])}
		for _, l := range s.locs {
			for _, f := range locs[l] {
				if i := funcs[f]; i >= 0 && int(i) < len(strs) {
					cs.funcs = append(cs.funcs, strs[i])
				}
			}
		}
		p.samples = append(p.samples, cs)
	}
	return p, nil
}

// eachField calls fn with each field of the message in data: a varint's
// value in x, a length-delimited field's bytes in b.
func eachField(data []byte, fn func(num protowire.Number, typ protowire.Type, b []byte, x uint64) error) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return protowire.ParseError(n)
		}
		data = data[n:]
		var b []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(data)
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(data)
		default:
			n = protowire.ConsumeFieldValue(num, typ, data)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		data = data[n:]
		if err := fn(num, typ, b, x); err != nil {
			return err
		}
	}
	return nil
}

// appendUints appends a repeated integer field's values, packed (b) or
// one at a time (x).
func appendUints(out []uint64, typ protowire.Type, b []byte, x uint64) []uint64 {
	if typ == protowire.VarintType {
		return append(out, x)
	}
	for len(b) > 0 {
		v, n := protowire.ConsumeVarint(b)
		if n < 0 {
			break
		}
		out, b = append(out, v), b[n:]
	}
	return out
}
