package api

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Memory sizes follow docker: every unit is a power of 1024, whether it is
// written "M", "MB", "Mi" or "MiB" (so "64M" is 64 MiB = 67108864 bytes, as
// in `docker run -m 64M`). Operators copy values between docker and shoal, so
// the same text must mean the same amount; the "i" forms are accepted for
// people who think in SI/IEC terms and want to be explicit. A bare number is
// bytes. Units are case-insensitive; a fraction is allowed ("1.5G") and the
// result is rounded down to a whole byte.
var memoryUnits = map[string]int64{
	"":  1,
	"k": 1 << 10,
	"m": 1 << 20,
	"g": 1 << 30,
	"t": 1 << 40,
	"p": 1 << 50,
	"e": 1 << 60,
}

// errUnknownUnit is wrapped so that every unit mistake reads the same way.
var errUnknownUnit = errors.New("unknown unit")

// maxNumberLen bounds the digits read, so a hostile value cannot make the
// exact arithmetic below expensive.
const maxNumberLen = 40

// ParseMemory reads a memory size such as "64M", "128Mi", "1G", "512k",
// "1.5GiB" or "1048576" (bytes) and returns it in bytes. See memoryUnits for
// the meaning of each unit.
func ParseMemory(s string) (int64, error) {
	num, unit, err := splitNumber(s)
	if err != nil {
		return 0, err
	}
	mult, err := memoryMultiplier(unit)
	if err != nil {
		return 0, err
	}
	whole, frac, err := splitDecimal(num)
	if err != nil {
		return 0, err
	}
	if mult == 1 && strings.Trim(frac, "0") != "" {
		return 0, errors.New("a byte count must be a whole number (or use a unit: K, M, G)")
	}
	// value = (whole.frac) * mult, exactly, rounded down.
	n, ok := new(big.Int).SetString(whole+frac, 10)
	if !ok {
		return 0, fmt.Errorf("%q is not a number", num)
	}
	n.Mul(n, big.NewInt(mult))
	n.Quo(n, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil))
	if !n.IsInt64() {
		return 0, fmt.Errorf("too large (at most %d bytes)", int64(math.MaxInt64))
	}
	return n.Int64(), nil
}

// memoryMultiplier reads a unit like "", "b", "m", "mb", "mi" or "mib".
func memoryMultiplier(unit string) (int64, error) {
	u := strings.ToLower(unit)
	if u == "b" {
		return 1, nil
	}
	u = strings.TrimSuffix(u, "b")
	u = strings.TrimSuffix(u, "i")
	mult, ok := memoryUnits[u]
	if !ok || (u == "" && unit != "") {
		return 0, fmt.Errorf("%w %q (use K, M, G or Ki, Mi, Gi)", errUnknownUnit, unit)
	}
	return mult, nil
}

// splitNumber splits "1.5GiB" into "1.5" and "GiB". One space may separate
// them ("64 MiB"), as docker allows.
func splitNumber(s string) (num, unit string, err error) {
	if s == "" {
		return "", "", errors.New("empty value")
	}
	if strings.HasPrefix(s, "-") {
		return "", "", errors.New("must not be negative")
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		return s, "", nil
	}
	num, unit = s[:i], s[i:]
	if len(unit) > 1 && unit[0] == ' ' {
		unit = unit[1:]
	}
	if num == "" {
		return "", "", errors.New("must start with a number, like 64M")
	}
	return num, unit, nil
}

// splitDecimal splits "12.50" into "12" and "50", rejecting anything that is
// not digits with at most one point.
func splitDecimal(num string) (whole, frac string, err error) {
	if len(num) > maxNumberLen {
		return "", "", fmt.Errorf("too many digits (at most %d)", maxNumberLen)
	}
	whole, frac, _ = strings.Cut(num, ".")
	if whole == "" && frac == "" || strings.Contains(frac, ".") {
		return "", "", fmt.Errorf("%q is not a number", num)
	}
	if whole == "" {
		whole = "0"
	}
	return whole, frac, nil
}

// nanoPerCPU is the number of NanoCPUs in one CPU.
const nanoPerCPU = 1_000_000_000

// ParseCPUs reads a decimal number of CPUs such as "0.5", "2" or "0.25" and
// returns it in NanoCPUs (billionths of a CPU). At most nine decimals are
// allowed, since a NanoCPU is the smallest amount; no sign, no exponent.
func ParseCPUs(s string) (int64, error) {
	if s == "" {
		return 0, errors.New("empty value")
	}
	if strings.HasPrefix(s, "-") {
		return 0, errors.New("must not be negative")
	}
	if strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' }) >= 0 {
		return 0, errors.New("not a decimal number of CPUs, like 0.5 or 2")
	}
	whole, frac, err := splitDecimal(s)
	if err != nil {
		return 0, err
	}
	if len(frac) > 9 {
		return 0, errors.New("too precise: at most 9 decimals (1 NanoCPU)")
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/nanoPerCPU-1 {
		return 0, fmt.Errorf("too large (at most %d CPUs)", int64(math.MaxInt64/nanoPerCPU-1))
	}
	var f int64
	if frac != "" {
		f, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64) // nine digits at most: cannot fail
	}
	return w*nanoPerCPU + f, nil
}

// FormatCPUs writes NanoCPUs as a decimal number of CPUs ("0.5", "2"), the
// inverse of ParseCPUs.
func FormatCPUs(nano int64) string {
	sign, mag := magnitude(nano)
	w, f := mag/nanoPerCPU, mag%nanoPerCPU
	if f == 0 {
		return sign + strconv.FormatUint(w, 10)
	}
	frac := strings.TrimRight(fmt.Sprintf("%09d", f), "0")
	return sign + strconv.FormatUint(w, 10) + "." + frac
}

// magnitude splits v into its sign and its absolute value, which for
// math.MinInt64 only fits in a uint64.
func magnitude(v int64) (string, uint64) {
	if v < 0 {
		return "-", uint64(-(v + 1)) + 1
	}
	return "", uint64(v)
}

// FormatMemory writes bytes with a binary unit ("64MiB", "1.5GiB", "100B"),
// with at most two decimals.
func FormatMemory(b int64) string {
	sign, mag := magnitude(b)
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	v, i := float64(mag), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(v, 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return sign + s + units[i]
}
