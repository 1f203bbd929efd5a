// Package pb holds the generated messages of switchboard.proto.
package pb

//go:generate protoc --go_out=. --go_opt=paths=source_relative switchboard.proto
