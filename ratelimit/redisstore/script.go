package redisstore

import "github.com/redis/go-redis/v9"

// takeScript is the whole decision, run atomically by Redis in one round
// trip (EVALSHA, EVAL when the server does not have it cached).
//
// KEYS[1] is a hash with three fields: w, the index of the fixed window
// that c counts; c, the count of window w; p, the count of window w-1.
// One key per (policy, client) keeps every key the script touches declared
// in KEYS, so Redis Cluster and proxies route it correctly.
//
// ARGV: window length in microseconds, limit, n (requests to take).
// Reply: {previous, current, elapsed µs, allowed 0|1}.
//
// The clock is the Redis server's (TIME), so every process that shares the
// server agrees on the windows whatever its own clock says. Before Redis 5
// a script that calls TIME may only write with effects replication, hence
// redis.replicate_commands (a no-op from Redis 5 on).
//
// A key whose window is ahead of the clock by one or two windows (the
// clock went back: a failover to a replica whose clock is behind, an NTP
// step) is counted in its own window, at its start, as
// ratelimit.MemoryStore does: counts are not reset by a clock that goes
// back a little. A window further ahead is stale (the clock jumped ahead
// and came back) and is started over like one in the past: kept, it would
// refuse the client until the clock caught up, with a key TTL that long,
// while Retry-After promised a few windows at most.
//
// The key expires on its own at the end of window w+1, after which c no
// longer counts; it is set when a take starts a new window (PEXPIREAT, on
// the same clock), so a take within the window only runs HINCRBY. That and
// writing nothing for a refused take keep the script at a few µs of Redis
// CPU.
//
// Numbers written to Redis are formatted with %d first: how Redis turns
// a Lua number argument into a string has changed between versions, and an
// exponent form ("1.7e+15", "1e+06") would be refused by PEXPIREAT or, as
// a count, by a later HINCRBY.
//
// The fit test is Policy.Fits, in the same order of operations:
// prev·(W−elapsed)/W + curr + n ≤ limit.
const takeLua = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local w = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local idx = math.floor(now / w)
local elapsed = now - idx * w
local v = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local sw = tonumber(v[1])
if sw and sw > idx and sw <= idx + 2 then
  idx, elapsed = sw, 0
end
local prev, curr = 0, 0
if sw == idx then
  curr = tonumber(v[2]) or 0
  prev = tonumber(v[3]) or 0
elseif sw == idx - 1 then
  prev = tonumber(v[2]) or 0
end
if not (prev * (w - elapsed) / w + curr + n <= limit) then
  return {prev, curr, elapsed, 0}
end
if sw == idx then
  curr = redis.call('HINCRBY', KEYS[1], 'c', ARGV[3])
else
  curr = curr + n
  redis.call('HSET', KEYS[1], 'w', string.format('%d', idx), 'c', string.format('%d', curr), 'p', string.format('%d', prev))
  redis.call('PEXPIREAT', KEYS[1], string.format('%d', math.ceil((idx + 2) * w / 1000)))
end
return {prev, curr, elapsed, 1}
`

var takeScript = redis.NewScript(takeLua)
