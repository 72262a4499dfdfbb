package redisstore

import "github.com/redis/go-redis/v9"

// readWindowLua is the one reading of a key's windows that the take and
// the peek scripts share: for the hash key of a window of w µs at now µs,
// the current window's index and the µs elapsed in it, the previous and
// current counts, and the window the hash holds (nil for none). A window
// one or two ahead of the clock is used as it is, at its start; see
// takeScript.
const readWindowLua = `
local function read_window(key, w, now)
  local idx = math.floor(now / w)
  local elapsed = now - idx * w
  local v = redis.call('HMGET', key, 'w', 'c', 'p')
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
  return idx, elapsed, prev, curr, sw
end
`

// takeScript is the whole decision, under one or several policies, run
// atomically by Redis in one round trip (EVALSHA, EVAL when the server
// does not have it cached).
//
// Each of KEYS is a hash with three fields: w, the index of the fixed
// window that c counts; c, the count of window w; p, the count of window
// w-1. One key per (policy, client) keeps every key the script touches
// declared in KEYS, so Redis Cluster and proxies route it correctly; the
// keys of one client share its hash tag, so a take under several
// policies touches one Cluster slot.
//
// ARGV: n (requests to take), then per key its window length in
// microseconds and its limit. Reply: {allowed 0|1}, then per key
// {previous, current, elapsed µs, window index}. n is counted under every
// key only if it fits under each (all or none).
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
// A key expires on its own at the end of window w+1, after which c no
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
` + readWindowLua + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local st = {}
local fits = true
for i = 1, #KEYS do
  local w = tonumber(ARGV[2 * i])
  local limit = tonumber(ARGV[2 * i + 1])
  local idx, elapsed, prev, curr, sw = read_window(KEYS[i], w, now)
  if not (prev * (w - elapsed) / w + curr + n <= limit) then
    fits = false
  end
  st[i] = {w, idx, elapsed, prev, curr, sw}
end
local out = {0}
if fits then out[1] = 1 end
for i = 1, #KEYS do
  local w, idx, elapsed, prev, curr, sw = unpack(st[i])
  if fits then
    if sw == idx then
      curr = redis.call('HINCRBY', KEYS[i], 'c', ARGV[1])
    else
      curr = curr + n
      redis.call('HSET', KEYS[i], 'w', string.format('%d', idx), 'c', string.format('%d', curr), 'p', string.format('%d', prev))
      redis.call('PEXPIREAT', KEYS[i], string.format('%d', math.ceil((idx + 2) * w / 1000)))
    end
  end
  out[#out + 1] = prev
  out[#out + 1] = curr
  out[#out + 1] = elapsed
  out[#out + 1] = idx
end
return out
`

var takeScript = redis.NewScript(takeLua)

// refundScript gives n back under each of KEYS (one client's keys, one
// slot) to the fixed window its take was counted in, ARGV[1+i]: to c while
// the key's window is still that one, to p once it has moved on by one,
// to nothing otherwise; never below zero. It leaves the expiry alone: a
// refund only lowers counts.
const refundLua = `
local n = tonumber(ARGV[1])
for i = 1, #KEYS do
  local idx = tonumber(ARGV[i + 1])
  local sw = tonumber(redis.call('HGET', KEYS[i], 'w'))
  local f = nil
  if sw == idx then
    f = 'c'
  elseif sw == idx + 1 then
    f = 'p'
  end
  if f then
    local c = redis.call('HINCRBY', KEYS[i], f, string.format('%d', -n))
    if c < 0 then
      redis.call('HSET', KEYS[i], f, '0')
    end
  end
end
return 0
`

var refundScript = redis.NewScript(refundLua)

// peekScript is takeScript without the take: per key (ARGV[i] its window
// in µs) {previous, current, elapsed µs, window index} as a take would see
// them now, on the server's clock, writing nothing.
const peekLua = readWindowLua + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local out = {}
for i = 1, #KEYS do
  local w = tonumber(ARGV[i])
  local idx, elapsed, prev, curr, sw = read_window(KEYS[i], w, now)
  out[#out + 1] = prev
  out[#out + 1] = curr
  out[#out + 1] = elapsed
  out[#out + 1] = idx
end
return out
`

var peekScript = redis.NewScript(peekLua)
