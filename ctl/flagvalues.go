package ctl

import (
	"errors"
	"strconv"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// These pflag.Value types parse a flag when it is given, so a bad value is
// reported at once, naming the flag (see flagError) and in its own words.

// memoryValue is a size like 64M (see api.ParseMemory).
type memoryValue struct {
	v    *int64
	text string
}

func (m *memoryValue) Set(s string) error {
	n, err := api.ParseMemory(s)
	if err != nil {
		return err
	}
	*m.v, m.text = n, s
	return nil
}

func (m *memoryValue) String() string { return m.text }
func (m *memoryValue) Type() string   { return "bytes" }

// cpuValue is a decimal number of CPUs like 0.5 (see api.ParseCPUs).
type cpuValue struct {
	v    *int64
	text string
}

func (c *cpuValue) Set(s string) error {
	n, err := api.ParseCPUs(s)
	if err != nil {
		return err
	}
	*c.v, c.text = n, s
	return nil
}

func (c *cpuValue) String() string { return c.text }
func (c *cpuValue) Type() string   { return "decimal" }

// durationValue is a Go duration that must not be negative.
type durationValue struct{ v *time.Duration }

func newDurationValue(p *time.Duration, def time.Duration) *durationValue {
	*p = def
	return &durationValue{v: p}
}

func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration like 500ms, 5s or 1m30s")
	}
	if v < 0 {
		return errors.New("must not be negative")
	}
	*d.v = v
	return nil
}

// String writes a zero duration as "0" so that help does not list it as a
// default.
func (d *durationValue) String() string {
	if *d.v == 0 {
		return "0"
	}
	return d.v.String()
}
func (d *durationValue) Type() string { return "duration" }

// uintValue is a whole number, 0 or more.
type uintValue struct{ v *uint64 }

func newUintValue(p *uint64, def uint64) *uintValue {
	*p = def
	return &uintValue{v: p}
}

func (u *uintValue) Set(s string) error {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return errors.New("want a whole number, 0 or more")
	}
	*u.v = v
	return nil
}

func (u *uintValue) String() string { return strconv.FormatUint(*u.v, 10) }
func (u *uintValue) Type() string   { return "uint" }
