package labregistry

import (
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// HealthRepository is the busybox image with a HEALTHCHECK of its own
// (see WithHealthcheck), which the registry serves beside the plain one.
const HealthRepository = "shoal/busybox-health:latest"

// ImageHealthcheck is the HEALTHCHECK of the image served as
// HealthRepository: healthy until a file /tmp/unhealthy exists, probed
// every 200 ms, unhealthy after 2 failures in a row.
var ImageHealthcheck = v1.HealthConfig{
	Test:     []string{"CMD-SHELL", "test ! -e /tmp/unhealthy && echo image check ok"},
	Interval: 200 * time.Millisecond,
	Timeout:  5 * time.Second,
	Retries:  2,
}

// WithHealthcheck returns img with hc as its HEALTHCHECK, written where
// Docker writes it (config.Healthcheck of the image config).
func WithHealthcheck(img v1.Image, hc v1.HealthConfig) (v1.Image, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.Config.Healthcheck = &hc
	out, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return out, nil
}

// Variant returns img with one more config label, so with a digest of its
// own: how a test moves a tag to new bytes.
func Variant(img v1.Image, label string) (v1.Image, error) {
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	if cfg.Config.Labels == nil {
		cfg.Config.Labels = map[string]string{}
	}
	cfg.Config.Labels["shoal.variant"] = label
	out, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	return out, nil
}
