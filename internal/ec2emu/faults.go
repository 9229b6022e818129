package ec2emu

import (
	"math/rand/v2"
	"net/http"
	"time"
)

// fault is one injected misbehaviour.
type fault struct {
	action    string // "" matches every action
	code      string // error code to return; "" with truncate set
	truncate  bool   // run the call, then cut its success body short
	remaining int
}

type faults struct {
	latency  time.Duration
	queue    []*fault
	fraction float64
	fracAct  string
	rng      *rand.Rand
	deny     map[string]bool
	hooks    map[string][]func()
}

// pick returns the fault for this call, if any, and uses it up.
func (f *faults) pick(action string) *fault {
	for i, q := range f.queue {
		if q.action != "" && q.action != action {
			continue
		}
		q.remaining--
		if q.remaining <= 0 {
			f.queue = append(f.queue[:i], f.queue[i+1:]...)
		}
		return q
	}
	if f.rng != nil && (f.fracAct == "" || f.fracAct == action) && f.rng.Float64() < f.fraction {
		return &fault{action: action, code: "RequestLimitExceeded"}
	}
	return nil
}

func (f *faults) takeHook(action string) func() {
	hs := f.hooks[action]
	if len(hs) == 0 {
		return nil
	}
	f.hooks[action] = hs[1:]
	return hs[0]
}

func (f *faults) denied(action string) *apiError {
	if f.deny[action] {
		return errorf("UnauthorizedOperation", "%s", defaultMessages["UnauthorizedOperation"])
	}
	return nil
}

// FailNext makes the next n calls of action ("" for any action) fail with
// code, sent with the status EC2 uses for it (RequestLimitExceeded 503,
// InternalError 500, and so on). Nothing is changed by those calls.
func (s *Server) FailNext(action string, n int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.queue = append(s.faults.queue, &fault{action: action, code: code, remaining: n})
}

// TruncateNext makes the next n calls of action run normally but reply with
// only the first half of their success body.
func (s *Server) TruncateNext(action string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.queue = append(s.faults.queue, &fault{action: action, truncate: true, remaining: n})
}

// Throttle makes each call of action ("" for any) fail with 503
// RequestLimitExceeded with the given probability, drawn from a generator
// seeded with seed. A fraction of 0 turns it off.
func (s *Server) Throttle(action string, fraction float64, seed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.fraction, s.faults.fracAct = fraction, action
	s.faults.rng = nil
	if fraction > 0 {
		s.faults.rng = newRand(seed)
	}
}

// SetLatency delays every call by d from now on.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.latency = d
}

// Deny makes every call of action fail with 403 UnauthorizedOperation, as an
// IAM policy without that action would.
func (s *Server) Deny(action string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.deny == nil {
		s.faults.deny = map[string]bool{}
	}
	s.faults.deny[action] = true
}

// BeforeNext runs fn once, just before the next call of action is handled
// (after its latency, outside the emulator's lock, so fn may seed or remove
// rules). Hooks for one action run in the order they were added.
func (s *Server) BeforeNext(action string, fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.hooks == nil {
		s.faults.hooks = map[string][]func(){}
	}
	s.faults.hooks[action] = append(s.faults.hooks[action], fn)
}

// ClearFaults removes every fault, hook and the latency.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faults{}
}

func (s *Server) writeFault(w http.ResponseWriter, reqID, action string, f *fault, region string, p params) {
	if !f.truncate {
		msg, ok := defaultMessages[f.code]
		if !ok {
			msg = "injected fault"
		}
		writeError(w, reqID, &apiError{Code: f.code, Message: msg})
		return
	}
	resp, apiErr := s.dispatch(action, region, p)
	if apiErr != nil {
		writeError(w, reqID, apiErr)
		return
	}
	body := encodeSuccess(action, reqID, resp)
	writeSuccess(w, reqID, body[:len(body)/2])
}
