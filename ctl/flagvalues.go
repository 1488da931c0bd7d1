package ctl

import (
	"errors"
	"strconv"
	"time"

	"github.com/shoal-sched/shoal/api"
)

// These pflag.Value types parse a flag when it is given, so a bad value is
// reported at once, naming the flag (see flagError) and in its own words.

// quantityValue is an amount written in its unit's own syntax: memory
// like 64M (see api.ParseMemory) or CPUs like 0.5 (see api.ParseCPUs).
type quantityValue struct {
	v     *int64
	text  string
	parse func(string) (int64, error)
	typ   string
}

func memoryValue(p *int64) *quantityValue {
	return &quantityValue{v: p, parse: api.ParseMemory, typ: "bytes"}
}

func cpuValue(p *int64) *quantityValue {
	return &quantityValue{v: p, parse: api.ParseCPUs, typ: "decimal"}
}

func (q *quantityValue) Set(s string) error {
	n, err := q.parse(s)
	if err != nil {
		return err
	}
	*q.v, q.text = n, s
	return nil
}

func (q *quantityValue) String() string { return q.text }
func (q *quantityValue) Type() string   { return q.typ }

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
