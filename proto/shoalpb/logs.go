package shoalpb

// Values of LogLine.stream. A line of LogStreamError is not container
// output: it says which node's (or task's) logs could not be fetched and
// why, and the stream goes on with the others.
const (
	LogStreamStdout = "stdout"
	LogStreamStderr = "stderr"
	LogStreamError  = "error"
)
