package ec2emu

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"time"
)

// DefaultQuota is the inbound (and, separately, outbound) rules a group may
// hold per address family unless [WithQuota] says otherwise.
const DefaultQuota = 60

// DefaultAccount is the account that owns what the emulator creates.
const DefaultAccount = "123456789012"

// Request is one logged call.
type Request struct {
	Action string
	Region string
	Params url.Values
	// Code is the error code the call got, "" on success.
	Code string
}

// Server is a running emulator. Its methods are safe for concurrent use.
type Server struct {
	// URL is the endpoint to give the SDK ("http://127.0.0.1:PORT").
	URL string

	http *httptest.Server

	mu       sync.Mutex
	account  string
	quota    int
	creds    map[string]string // access key id -> secret; nil accepts any key
	regions  map[string]*region
	allowed  []string // regions accepted; nil accepts any well-formed one
	seq      uint64
	tokens   map[string]pageToken
	requests []Request
	logGen   int // bumped when the log is cleared, so late updates are dropped
	faults   faults
	// defaultVPC makes a revoke by properties behave as in a default VPC:
	// permissions with no matching rule are listed, not refused.
	defaultVPC bool
}

// Option configures a Server.
type Option func(*Server)

// WithQuota sets the rules-per-group quota per family and direction.
func WithQuota(n int) Option { return func(s *Server) { s.quota = n } }

// WithAccount sets the account id that owns groups and rules.
func WithAccount(id string) Option { return func(s *Server) { s.account = id } }

// WithCredentials accepts only this access key, and checks the SigV4
// signature of every request with secret. It may be given more than once.
func WithCredentials(accessKeyID, secret string) Option {
	return func(s *Server) {
		if s.creds == nil {
			s.creds = map[string]string{}
		}
		s.creds[accessKeyID] = secret
	}
}

// WithRegions restricts the regions a credential scope may name.
func WithRegions(names ...string) Option {
	return func(s *Server) { s.allowed = append(s.allowed, names...) }
}

// WithDefaultVPC makes RevokeSecurityGroupIngress and
// RevokeSecurityGroupEgress by properties behave as in a default VPC: the
// rules that match are revoked and the permissions that match no rule come
// back in unknownIpPermissionSet, where a non-default VPC refuses the whole
// call with InvalidPermission.NotFound.
func WithDefaultVPC() Option { return func(s *Server) { s.defaultVPC = true } }

// WithLatency delays every call by d.
func WithLatency(d time.Duration) Option { return func(s *Server) { s.faults.latency = d } }

// New starts an emulator on 127.0.0.1 on a random port. Close it when done.
func New(opts ...Option) *Server {
	s := NewHandler(opts...)
	s.http = httptest.NewServer(s)
	s.URL = s.http.URL
	return s
}

// NewHandler returns an emulator that is not listening, for callers that
// serve it themselves (URL is empty and Close does nothing).
func NewHandler(opts ...Option) *Server {
	s := &Server{account: DefaultAccount, quota: DefaultQuota}
	for _, o := range opts {
		o(s)
	}
	s.resetLocked()
	return s
}

// Close stops the server New started.
func (s *Server) Close() {
	if s.http != nil {
		s.http.Close()
	}
}

// Reset drops every group, rule, prefix list, logged request and fault.
// Options given to New stay in force.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

func (s *Server) resetLocked() {
	s.regions = map[string]*region{}
	s.tokens = map[string]pageToken{}
	s.requests = nil
	s.logGen++
	latency := s.faults.latency
	s.faults = faults{latency: latency}
}

// SetQuota changes the rules-per-group quota from now on.
func (s *Server) SetQuota(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quota = n
}

// Actions lists the actions the emulator implements.
func (s *Server) Actions() []string {
	names := make([]string, 0, len(handlers))
	for n := range handlers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Requests returns a copy of the calls logged so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Calls counts the logged calls of an action ("" counts all), failed
// attempts included.
func (s *Server) Calls(action string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.requests {
		if action == "" || r.Action == action {
			n++
		}
	}
	return n
}

// ClearRequests empties the request log.
func (s *Server) ClearRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
	s.logGen++
}

// region returns the state of a region, creating it on first use.
func (s *Server) region(name string) *region {
	rg := s.regions[name]
	if rg == nil {
		s.seq++
		rg = newRegion(name, fmt.Sprintf("vpc-%017x", s.seq))
		s.regions[name] = rg
	}
	return rg
}

func (s *Server) newID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s-%017x", prefix, s.seq)
}

// ServeHTTP handles one Query-protocol call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := s.requestID()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, reqID, errorf("InvalidRequest", "could not read the request body"))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || r.Method != http.MethodPost {
		writeError(w, reqID, errorf("InvalidRequest", "expected a form-encoded POST"))
		return
	}
	action := form.Get("Action")
	region, authErr := s.authenticate(r, body)
	entry, delay, hook, fault := s.admit(action, region, form, authErr)
	if delay > 0 {
		time.Sleep(delay)
	}
	if hook != nil {
		hook()
	}
	if authErr != nil {
		writeError(w, reqID, authErr)
		return
	}
	if fault != nil {
		s.writeFault(w, reqID, action, fault, region, parseParams(form))
		return
	}
	resp, apiErr := s.dispatch(action, region, parseParams(form))
	s.finish(entry, apiErr)
	if apiErr != nil {
		writeError(w, reqID, apiErr)
		return
	}
	writeSuccess(w, reqID, encodeSuccess(action, reqID, resp))
}

func (s *Server) requestID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	n := s.seq
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", n>>16, n)
}

// logEntry locates a logged request so its outcome can be filled in later.
type logEntry struct{ index, gen int }

// admit logs the call and decides its faults, under the lock.
func (s *Server) admit(action, region string, form url.Values, authErr *apiError) (
	logEntry, time.Duration, func(), *fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	req := Request{Action: action, Region: region, Params: form}
	if authErr != nil {
		req.Code = authErr.Code
	}
	var f *fault
	if authErr == nil {
		f = s.faults.pick(action)
		if f != nil && f.code != "" {
			req.Code = f.code
		}
	}
	s.requests = append(s.requests, req)
	e := logEntry{index: len(s.requests) - 1, gen: s.logGen}
	return e, s.faults.latency, s.faults.takeHook(action), f
}

// finish records the error a call that reached its handler got.
func (s *Server) finish(e logEntry, err *apiError) {
	if err == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.gen == s.logGen && e.index < len(s.requests) {
		s.requests[e.index].Code = err.Code
	}
}

func (s *Server) dispatch(action, region string, p params) (payload, *apiError) {
	h, ok := handlers[action]
	if !ok {
		return nil, errorf("InvalidAction", "The action %s is not valid for this web service.", action)
	}
	if p["Version"] != "2016-11-15" {
		return nil, errorf("InvalidParameterValue", "Invalid API version %q", p["Version"])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p["DryRun"] == "true" {
		if e := s.faults.denied(action); e != nil {
			return nil, e
		}
		return nil, errorf("DryRunOperation", "%s", defaultMessages["DryRunOperation"])
	}
	if e := s.faults.denied(action); e != nil {
		return nil, e
	}
	return h(s, s.region(region), p)
}

// handlers maps actions to their implementations. Each runs under s.mu.
var handlers map[string]func(*Server, *region, params) (payload, *apiError)

func init() {
	handlers = map[string]func(*Server, *region, params) (payload, *apiError){
		"DescribeSecurityGroups":                     (*Server).describeGroups,
		"CreateSecurityGroup":                        (*Server).createGroup,
		"DescribeSecurityGroupRules":                 (*Server).describeRules,
		"DescribeManagedPrefixLists":                 (*Server).describePrefixLists,
		"AuthorizeSecurityGroupIngress":              authorize(false),
		"AuthorizeSecurityGroupEgress":               authorize(true),
		"RevokeSecurityGroupIngress":                 revoke(false),
		"RevokeSecurityGroupEgress":                  revoke(true),
		"UpdateSecurityGroupRuleDescriptionsIngress": updateDescriptions(false),
		"UpdateSecurityGroupRuleDescriptionsEgress":  updateDescriptions(true),
		"ModifySecurityGroupRules":                   (*Server).modifyRules,
	}
}

// randSource is split out so the throttling fraction is reproducible.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
