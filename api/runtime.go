package api

// Labels put on every container shoal creates, so an agent can find (and
// adopt or remove) its containers after a restart.
const (
	LabelTask    = "shoal.task"
	LabelService = "shoal.service"
	LabelNode    = "shoal.node"
	LabelSlot    = "shoal.slot"
	// LabelStack marks the services a stack deployed.
	LabelStack = "shoal.stack"
)
