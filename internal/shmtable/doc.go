// Package shmtable is a ratelimit.Store in shared memory: one table that
// every process mapping the same file (the workers of one cluster
// supervisor) counts into, updated with atomic operations only, so that a
// process killed with kill -9 at any instruction leaves nothing locked and
// nothing half-written that another process would read as a count.
//
// # Layout
//
// The file is a header page, a table of policies and a table of slots.
// The header holds a magic number and a layout version (a process refuses
// a table it does not understand: [ErrIncompatible]), the number of slots,
// the key cap, two random hash seeds and the number of live keys.
//
// A slot is 32 bytes, four 64-bit words: a tag (state, policy number and 50
// bits of the key's first seeded hash), the key's second seeded hash, and
// one word per window parity, each holding (window index mod 2³², the
// refused flag, the count) so that a take is one compare-and-swap on one
// word. A key is identified by its policy and 114 bits of two
// independent hashes under seeds only the table knows, as MemoryStore
// identifies keys longer than 36 bytes; a collision between two of a
// million keys has a probability below 10⁻²².
//
// # Slot protocol
//
// A tag is EMPTY (never used), BUSY (being filled by a process: its pid and
// 30 bits of the tag to come), READY, or TOMB (freed). Slots never go back
// to EMPTY, so a lookup from a key's home slot can stop at the first EMPTY
// one: a key is always inserted at or before it. An insert claims the first
// free slot (TOMB or EMPTY) of its neighbourhood with a CAS to BUSY, zeroes
// the window words, writes the second hash, then looks along the chain
// again: a READY copy of its key, or a BUSY one that may be its key at a
// lower position, makes it give its slot back; a BUSY one further on is
// waited for (that inserter will see this one and give way). Only then is
// the tag CASed to READY. Two processes inserting one key at once therefore
// end up in one slot.
//
// A BUSY slot whose process has died is reclaimed (CAS to TOMB) by
// whichever process waits on it, after checking that the pid is gone, and
// by the supervisor when it reaps a worker ([Table.ReclaimDead]). No other
// state can be left behind by a death: every other change is one CAS.
//
// # Windows
//
// A take at window k reads the words of parities k and k−1, decides with
// ratelimit.Policy.Fits, and commits with one CAS on the word of parity k:
// (k, c) → (k, c+n), or a stale window → (k, n). A failed CAS re-reads. The
// previous window's word is not written at window k, so the decision is
// linearizable: of any number of concurrent takes, exactly as many as fit
// are counted. After a successful CAS the take checks that the slot still
// holds its key (it may have been evicted meanwhile) and takes again if not.
package shmtable
