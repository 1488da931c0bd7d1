package api

import (
	"regexp"
	"strings"
)

// ImageRef is the reference a task's container is made from: Image pinned
// to ImageDigest when the managers resolved one ("repo@sha256:..."; the tag
// is dropped, since the digest names the bytes), else Image as given.
func (s *ServiceSpec) ImageRef() string {
	if s.ImageDigest == "" || strings.Contains(s.Image, "@") {
		return s.Image
	}
	return imageRepo(s.Image) + "@" + s.ImageDigest
}

// imageRepo is ref without its tag: a colon after the last slash starts
// the tag ("host:5000/app:1" is repository "host:5000/app").
func imageRepo(ref string) string {
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i]
	}
	return ref
}

// imageDigest is the form of a pinned digest: sha256, as registries name
// manifests.
var imageDigest = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

func validateImageDigest(d string) error {
	if d != "" && !imageDigest.MatchString(d) {
		return fieldErr("spec.image_digest", d, "want sha256: and 64 lowercase hex digits, or empty")
	}
	return nil
}
