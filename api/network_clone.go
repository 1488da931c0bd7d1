package api

import "slices"

func cloneAttachmentSpecs(in []NetworkAttachmentSpec) []NetworkAttachmentSpec {
	if in == nil {
		return nil
	}
	out := make([]NetworkAttachmentSpec, len(in))
	for i, a := range in {
		out[i] = NetworkAttachmentSpec{Target: a.Target, Aliases: slices.Clone(a.Aliases)}
	}
	return out
}

// CloneAttachments returns a deep copy of a task's attachments.
func CloneAttachments(in []NetworkAttachment) []NetworkAttachment {
	if in == nil {
		return nil
	}
	out := make([]NetworkAttachment, len(in))
	for i, a := range in {
		out[i] = a
		out[i].Aliases = slices.Clone(a.Aliases)
	}
	return out
}

// Clone returns a deep copy of e.
func (e ServiceEndpoint) Clone() ServiceEndpoint {
	return ServiceEndpoint{Ports: slices.Clone(e.Ports), VIPs: slices.Clone(e.VIPs)}
}

// Clone returns a deep copy of n.
func (n *Network) Clone() *Network {
	c := *n
	c.Spec.Labels = cloneMap(n.Spec.Labels)
	return &c
}
