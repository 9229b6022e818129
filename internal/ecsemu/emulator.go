package ecsemu

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// APIVersion is the only ECS API version the emulator serves.
const APIVersion = "2014-05-26"

// DefaultQuota is the rules-per-group limit (ingress and egress together)
// the emulator enforces unless told otherwise.
const DefaultQuota = 200

// Request is one call the emulator received, as decoded from the wire.
type Request struct {
	Action string
	Params url.Values
	Status int
	// Code is the error code sent back, "" on success.
	Code string
}

// Fault is an error the emulator sends instead of serving a call.
type Fault struct {
	// Action limits the fault to one action; "" matches every action.
	Action  string
	Status  int
	Code    string
	Message string
	// Broken serves the call (its changes are made) and then sends a 200
	// with a truncated JSON body.
	Broken bool
}

// Throttling is the gateway's flow-control refusal (HTTP 400).
func Throttling(action string) Fault {
	return Fault{Action: action, Status: 400, Code: "Throttling",
		Message: "Request was denied due to request throttling."}
}

// ServiceUnavailable is a 503 from the gateway.
func ServiceUnavailable(action string) Fault {
	return Fault{Action: action, Status: 503, Code: "ServiceUnavailable",
		Message: "The request has failed due to a temporary failure of the server."}
}

// InternalError is a 500 from the service.
func InternalError(action string) Fault {
	return Fault{Action: action, Status: 500, Code: "InternalError",
		Message: "The request processing has failed due to some unknown error."}
}

// BrokenBody serves the call and then sends a body the client cannot parse.
func BrokenBody(action string) Fault {
	return Fault{Action: action, Broken: true}
}

type pendingFault struct {
	f    Fault
	left int
}

type accessKey struct {
	secret string
	token  string
}

// Emulator serves the ECS security-group API. The zero value is not usable;
// call New. It is an http.Handler: mount it with httptest.NewServer.
type Emulator struct {
	mu sync.Mutex

	keys   map[string]accessKey
	groups map[string]*group
	nonces map[string]bool
	seq    int
	ids    *rand.Rand
	now    func() time.Time

	quota            int
	duplicateUpdates bool
	priorityAsString bool
	latency          time.Duration

	faults    []*pendingFault
	fracRand  *rand.Rand
	fraction  float64
	fracFault Fault
	hooks     map[string][]func()

	log []Request

	inFlight, maxInFlight int
}

// New returns an empty emulator with the default quota.
func New() *Emulator {
	return &Emulator{
		keys:   map[string]accessKey{},
		groups: map[string]*group{},
		nonces: map[string]bool{},
		ids:    rand.New(rand.NewPCG(1, 2)),
		now:    time.Now,
		quota:  DefaultQuota,
		hooks:  map[string][]func(){},
	}
}

// AddAccessKey registers a key pair the emulator accepts. A non-empty token
// must then come with every request signed by that key (STS credentials).
func (e *Emulator) AddAccessKey(id, secret, token string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.keys[id] = accessKey{secret: secret, token: token}
}

// SetQuota sets the rules-per-group limit (ingress plus egress).
func (e *Emulator) SetQuota(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.quota = n
}

// SetDuplicateUpdates makes a duplicate authorize update the existing rule's
// priority and description. The default, false, leaves it as it was; the
// reference does not say which the real service does.
func (e *Emulator) SetDuplicateUpdates(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.duplicateUpdates = on
}

// SetPriorityAsString sends Priority as a JSON string instead of the number
// the documentation's examples show.
func (e *Emulator) SetPriorityAsString(on bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.priorityAsString = on
}

// SetLatency delays every reply by d.
func (e *Emulator) SetLatency(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.latency = d
}

// FailNext sends f instead of serving the next n calls that match it.
func (e *Emulator) FailNext(n int, f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = append(e.faults, &pendingFault{f: f, left: n})
}

// FailFraction sends f instead of serving each call with probability frac,
// drawn from a generator seeded with seed. frac 0 turns it off.
func (e *Emulator) FailFraction(frac float64, seed uint64, f Fault) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fraction, e.fracFault = frac, f
	e.fracRand = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// ClearFaults drops every pending fault.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults, e.fraction = nil, 0
}

// BeforeNext runs fn once, just before the next call of action is served
// (after its signature was checked). fn may change the emulator's state, as
// a concurrent client would.
func (e *Emulator) BeforeNext(action string, fn func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hooks[action] = append(e.hooks[action], fn)
}

// Requests returns a copy of every call received so far, in arrival order.
func (e *Emulator) Requests() []Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Request(nil), e.log...)
}

// Calls counts the calls received for action ("" counts all).
func (e *Emulator) Calls(action string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, r := range e.log {
		if action == "" || r.Action == action {
			n++
		}
	}
	return n
}

// CallCounts returns the number of calls per action.
func (e *Emulator) CallCounts() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := map[string]int{}
	for _, r := range e.log {
		m[r.Action]++
	}
	return m
}

// ResetRequests forgets the recorded calls and the in-flight peak.
func (e *Emulator) ResetRequests() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log, e.maxInFlight = nil, 0
}

// MaxInFlight is the most calls the emulator served at once since the last
// ResetRequests.
func (e *Emulator) MaxInFlight() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.maxInFlight
}

// apiError is an error reply.
type apiError struct {
	status  int
	code    string
	message string
}

func (a *apiError) Error() string { return a.code + ": " + a.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// ServeHTTP implements http.Handler.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	params, perr := readParams(r)
	action := params.Get("Action")

	e.mu.Lock()
	lat := e.latency
	e.inFlight++
	e.maxInFlight = max(e.maxInFlight, e.inFlight)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		e.inFlight--
		e.mu.Unlock()
	}()
	if lat > 0 {
		time.Sleep(lat)
	}

	rec := Request{Action: action, Params: params}
	reqID := e.requestID()
	var body any
	var aerr *apiError
	broken := false
	switch {
	case perr != nil:
		aerr = errorf(400, "InvalidParameter", "the request could not be parsed: %v", perr)
	default:
		aerr = e.checkRequest(r.Method, params)
	}
	if aerr == nil {
		e.runHooks(action)
		e.mu.Lock()
		var f *Fault
		f, aerr = e.takeFault(action)
		if aerr == nil {
			body, aerr = e.dispatch(action, params)
			broken = f != nil && f.Broken
		}
		e.mu.Unlock()
	}

	if aerr != nil {
		rec.Status, rec.Code = aerr.status, aerr.code
		e.record(rec)
		writeJSON(w, aerr.status, errorBody{
			RequestID: reqID, HostID: "ecs.aliyuncs.com", Code: aerr.code,
			Message:   aerr.message,
			Recommend: "https://api.aliyun.com/troubleshoot?q=" + url.QueryEscape(aerr.code) + "&product=Ecs",
		})
		return
	}
	rec.Status = 200
	e.record(rec)
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	b = withRequestID(b, reqID)
	if broken {
		b = b[:len(b)/2]
	}
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(200)
	w.Write(b)
}

func readParams(r *http.Request) (url.Values, error) {
	params := url.Values{}
	if err := r.ParseForm(); err != nil {
		return params, err
	}
	for k, vs := range r.Form {
		params[k] = append([]string(nil), vs...)
	}
	return params, nil
}

func (e *Emulator) runHooks(action string) {
	e.mu.Lock()
	hs := e.hooks[action]
	delete(e.hooks, action)
	e.mu.Unlock()
	for _, h := range hs {
		h()
	}
}

// takeFault returns the fault that replaces this call, if any. A broken-body
// fault is returned as f with no error; the call is then served.
func (e *Emulator) takeFault(action string) (*Fault, *apiError) {
	for i, pf := range e.faults {
		if pf.f.Action != "" && pf.f.Action != action {
			continue
		}
		pf.left--
		if pf.left <= 0 {
			e.faults = append(e.faults[:i], e.faults[i+1:]...)
		}
		f := pf.f
		if f.Broken {
			return &f, nil
		}
		return nil, &apiError{status: f.Status, code: f.Code, message: f.Message}
	}
	if e.fraction > 0 && (e.fracFault.Action == "" || e.fracFault.Action == action) &&
		e.fracRand.Float64() < e.fraction {
		f := e.fracFault
		if f.Broken {
			return &f, nil
		}
		return nil, &apiError{status: f.Status, code: f.Code, message: f.Message}
	}
	return nil, nil
}

func (e *Emulator) record(r Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.log = append(e.log, r)
}

func (e *Emulator) requestID() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	const hex = "0123456789ABCDEF"
	b := make([]byte, 32)
	for i := range b {
		b[i] = hex[e.ids.IntN(16)]
	}
	s := string(b)
	return s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}

// errorBody is the error reply. Every field must stay a string: the SDK
// reads them with a type assertion to string and panics otherwise.
type errorBody struct {
	RequestID string `json:"RequestId"`
	HostID    string `json:"HostId"`
	Code      string `json:"Code"`
	Message   string `json:"Message"`
	Recommend string `json:"Recommend"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// withRequestID puts "RequestId" first in a JSON object.
func withRequestID(b []byte, id string) []byte {
	head := `{"RequestId":` + quote(id)
	rest := strings.TrimPrefix(string(b), "{")
	if rest == "}" {
		return []byte(head + "}")
	}
	return []byte(head + "," + rest)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// checkRequest checks the common parameters and the signature.
func (e *Emulator) checkRequest(method string, p url.Values) *apiError {
	for _, k := range []string{"Action", "Version", "AccessKeyId", "Signature", "SignatureMethod",
		"SignatureNonce", "Timestamp"} {
		if p.Get(k) == "" {
			return errorf(400, "MissingParameter",
				"The input parameter %q that is mandatory for processing this request is not supplied.", k)
		}
	}
	switch {
	case p.Get("Version") != APIVersion:
		return errorf(400, "InvalidVersion", "Specified parameter Version is not valid.")
	case p.Get("Format") != "" && !strings.EqualFold(p.Get("Format"), "JSON"):
		return errorf(400, "InvalidParameter", "the emulator serves Format=JSON only")
	case p.Get("SignatureMethod") != "HMAC-SHA1":
		return errorf(400, "InvalidParameter", "Specified SignatureMethod is not valid.")
	case p.Get("SignatureVersion") != "1.0":
		return errorf(400, "InvalidParameter", "Specified SignatureVersion is not valid.")
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	key, ok := e.keys[p.Get("AccessKeyId")]
	if !ok {
		return errorf(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
	}
	sts := StringToSign(method, p)
	if Sign(sts, key.secret) != p.Get("Signature") {
		// NOTE: the reference tables list 400 and 403 for this code; 400 here.
		return errorf(400, "SignatureDoesNotMatch",
			"Specified signature is not matched with our calculation. server string to sign is:%s", sts)
	}
	ts, err := time.Parse("2006-01-02T15:04:05Z", p.Get("Timestamp"))
	if err != nil {
		return errorf(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
	}
	if d := e.now().Sub(ts); d > 15*time.Minute || d < -15*time.Minute {
		return errorf(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
	}
	if key.token != "" && p.Get("SecurityToken") != key.token {
		// NOTE: code chosen by the emulator; the reference does not list it.
		return errorf(400, "InvalidSecurityToken.MismatchWithAccessKey",
			"The Security Token does not match the access key.")
	}
	nonce := p.Get("SignatureNonce")
	if e.nonces[nonce] {
		return errorf(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
	}
	e.nonces[nonce] = true
	return nil
}

func (e *Emulator) dispatch(action string, p url.Values) (any, *apiError) {
	switch action {
	case "DescribeSecurityGroups":
		return e.describeSecurityGroups(p)
	case "DescribeSecurityGroupAttribute":
		return e.describeSecurityGroupAttribute(p)
	case "AuthorizeSecurityGroup":
		return e.authorizeSecurityGroup(p)
	case "RevokeSecurityGroup":
		return e.revokeSecurityGroup(p)
	case "ModifySecurityGroupRule":
		return e.modifySecurityGroupRule(p)
	}
	return nil, errorf(404, "InvalidAction.NotFound",
		"Specified api is not found, please check your url and method.")
}

// sortedKeys returns the keys of p in order, for deterministic iteration.
func sortedKeys(p url.Values) []string {
	ks := make([]string, 0, len(p))
	for k := range p {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
