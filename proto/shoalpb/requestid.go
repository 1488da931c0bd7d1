package shoalpb

// RequestIDKey is the gRPC metadata key that carries a write's request ID
// (printable ASCII, at most 128 bytes). A client sends the same ID with
// every attempt of one write, to whichever manager it tries; a manager
// passes it on when it forwards the call, and makes one for a write that
// comes without. The leader applies each request ID once and answers a
// repeat with the first result, so a write whose answer was lost can be
// sent again without being applied twice.
const RequestIDKey = "shoal-request-id"
