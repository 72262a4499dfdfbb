// Package redisstore keeps ratelimit counts in Redis, so that every process
// and every machine of a service enforces one limit together.
//
// Usage:
//
//	rdb := redis.NewClient(&redis.Options{
//		Addr:                  "127.0.0.1:6379",
//		ContextTimeoutEnabled: true, // let the store's timeout cut socket I/O
//	})
//	store, err := redisstore.New(rdb, redisstore.WithPrefix("myapp:rl:"))
//	if err != nil {
//		log.Fatal(err) // a nil client or a bad option
//	}
//	defer store.Close() // before rdb.Close()
//	limiter, err := ratelimit.New(100, time.Minute, ratelimit.WithStore(store))
//	if err != nil {
//		log.Fatal(err)
//	}
//	handler := limiter.Handler(mux)
//
// Any go-redis [redis.UniversalClient] works: a single node, a Sentinel
// failover client, a Redis Cluster client.
//
// # How a decision is made
//
// Each Take is one round trip: a Lua script (EVALSHA, EVAL after a script
// cache flush) that reads the key's two fixed windows, decides with the
// same expression as [ratelimit.Policy.Fits], counts the take if it fits
// and returns the counts, atomically. Windows are computed on the Redis
// server's clock (TIME), so processes whose clocks disagree still count in
// the same windows. Each (policy, client) is one small hash that expires on
// its own at most two windows after its last write.
//
// Every other method of ratelimit.Store is one round trip too: TakeAll is
// the same script over the keys of several policies, counted in all or
// none; Refund a script that gives a take back to the window it was
// counted in; Peek a script that writes nothing; Reset one DEL.
//
// # When Redis fails
//
// A Take that fails or gets no answer within the timeout (50ms by default,
// [WithTimeout]) is answered by the fallback store (a
// [ratelimit.MemoryStore] by default, [WithFallback]) and the Store
// switches to it: later Takes do not touch Redis at all, so an outage costs
// requests nothing, while one background probe tries Redis every 500ms and
// switches back when it answers. Each switch is logged once. During the
// outage each process counts on its own. [Store.Degraded] reports the state
// for a health check; [Store.Close] stops the probe.
//
// A Take whose caller's context ends first (the client disconnected) is not
// a Redis failure: it returns the context's error and the Store stays on
// Redis. The ratelimit.Limiter and slowdown.Delayer then do not serve that
// request at all, so disconnecting never gets a request past the limit.
//
// # Keys
//
// A Redis key is prefix + "{" + tag + "}:" + name. The tag is the client's
// key when it is short printable ASCII (readable in redis-cli), otherwise a
// SHA-256 of it, and the policy name is kept the same way, so keys a client
// controls — spaces, newlines, braces, non-UTF-8, 10 KB — are stored safely
// in a bounded key, and the braces make the client's tag the Redis Cluster
// hash tag whatever the key holds: every policy of one client is in one
// slot, which a script over several of them needs.
//
// Examples: [ExampleNew], [ExampleWithFallback].
package redisstore
