//go:build unix

// Package shm holds what the packages that share memory between the
// cluster supervisor and its workers (internal/shmring, internal/shmtable)
// do alike: make an anonymous shared-memory file of a fixed size (a sealed
// memfd on Linux, an unlinked temporary file elsewhere) and map it.
package shm
