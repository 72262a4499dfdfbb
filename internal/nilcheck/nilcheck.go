// Package nilcheck tells a constructor whether an interface value it was
// given can be used: a nil interface, or one holding a nil pointer, map,
// slice, channel or function (a nil *ratelimit.MemoryStore passed as a
// ratelimit.Store, a nil *net.TCPListener as a net.Listener), would only
// fail later, on the first request or Accept, with a panic. ratelimit,
// slowdown and connlimit turn it into an error at start-up instead.
package nilcheck

import "reflect"

// Is reports whether v is nil or an interface holding a nil pointer, map,
// slice, channel or function.
func Is(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}
