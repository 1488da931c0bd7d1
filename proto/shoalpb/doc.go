// Package shoalpb holds the gRPC API of shoal (generated from the .proto
// files beside it by `make proto`) and the conversions between its messages
// and the domain types in package api. Nothing below the gRPC edge uses these
// messages.
package shoalpb
