package alibaba

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	sdkerrors "github.com/aliyun/alibaba-cloud-sdk-go/sdk/errors"

	"github.com/mailfw/mailfw/plan"
)

// APIError is a call ECS refused or that failed on the way.
type APIError struct {
	Action string
	// Code is ECS's error code ("Throttling", "InvalidSecurityGroupId.NotFound"),
	// or the SDK's ("SDK.JsonUnmarshalError"), or "Transport" when no reply came.
	Code       string
	Message    string
	HTTPStatus int // 0 when no reply came
	RequestID  string
	Err        error // the SDK's error
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ecs %s: %s", e.Action, e.Code)
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.HTTPStatus)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request id " + e.RequestID + ")")
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

// retryable reports whether the call was refused before it ran or failed in
// a way a repeat cannot make worse. Every call mailfw makes is safe to
// repeat: a duplicate authorize is a silent success, a modify sets the same
// description, and a revoke of rules already gone is handled by the caller.
func (e *APIError) retryable() bool {
	switch {
	case strings.HasPrefix(e.Code, "Throttling"), e.Code == "ServiceUnavailable",
		e.Code == "Transport", e.HTTPStatus >= 500:
		return true
	}
	return false
}

// CredentialError says the credentials mailfw found were refused or could
// not be fetched. Source names where they came from, never their value.
type CredentialError struct {
	Source string
	Region string
	Code   string
	Err    error
}

func (e *CredentialError) Error() string {
	why := map[string]string{
		"SignatureDoesNotMatch":                      "the access key secret does not match the access key id",
		"IncompleteSignature":                        "the access key secret does not match the access key id",
		"InvalidAccessKeyId.NotFound":                "the access key id does not exist",
		"InvalidAccessKeyId.Inactive":                "the access key is disabled",
		"InvalidSecurityToken.Expired":               "the security token has expired",
		"InvalidSecurityToken.Malformed":             "the security token is malformed",
		"InvalidSecurityToken.MismatchWithAccessKey": "the security token does not belong to the access key",
	}[e.Code]
	if why == "" && e.Err != nil {
		why = e.Err.Error()
	}
	if e.Code == "" {
		return fmt.Sprintf("alibaba credentials from %s: %s", e.Source, why)
	}
	return fmt.Sprintf("alibaba credentials from %s were refused by ECS in %s: %s (%s)",
		e.Source, e.Region, why, e.Code)
}

func (e *CredentialError) Unwrap() error { return e.Err }

var credentialCodes = map[string]bool{
	"SignatureDoesNotMatch": true, "IncompleteSignature": true,
	"InvalidAccessKeyId.NotFound": true, "InvalidAccessKeyId.Inactive": true,
	"InvalidSecurityToken.Expired": true, "InvalidSecurityToken.Malformed": true,
	"InvalidSecurityToken.MismatchWithAccessKey": true,
}

// convert turns what the SDK returned into an *APIError or a
// *CredentialError.
func (b *Backend) convert(action string, err error) error {
	var fetch *credFetchError
	if errors.As(err, &fetch) {
		return &CredentialError{Source: b.creds.name, Region: b.region, Err: fetch.err}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("ecs %s: %w", action, err)
	}
	var se *sdkerrors.ServerError
	if errors.As(err, &se) {
		ae := &APIError{Action: action, Code: se.ErrorCode(), Message: firstLine(se.Message()),
			HTTPStatus: se.HttpStatus(), RequestID: se.RequestId(), Err: err}
		if ae.Code == "" {
			ae.Code = "UnknownError"
		}
		if credentialCodes[ae.Code] {
			return &CredentialError{Source: b.creds.name, Region: b.region, Code: ae.Code, Err: ae}
		}
		return ae
	}
	var ce *sdkerrors.ClientError
	if errors.As(err, &ce) {
		msg := ce.Message()
		if o := ce.OriginError(); o != nil {
			msg += ": " + redact(o)
		}
		return &APIError{Action: action, Code: ce.ErrorCode(), Message: firstLine(msg), Err: err}
	}
	return &APIError{Action: action, Code: "Transport", Message: firstLine(redact(err)), Err: err}
}

// redact describes a transport error without its URL, whose query carries
// the signature and any security token.
func redact(err error) string {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err.Error()
	}
	host := ue.URL
	if u, perr := url.Parse(ue.URL); perr == nil {
		host = u.Scheme + "://" + u.Host
	} else {
		host = "the endpoint"
	}
	return fmt.Sprintf("%s %s: %v", ue.Op, host, ue.Err)
}

// firstLine keeps messages on one line and drops the string to sign that
// ECS appends to signature errors.
func firstLine(s string) string {
	if i := strings.Index(s, "server string to sign is:"); i >= 0 {
		s = s[:i]
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// QuotaError refuses an apply that would take a group past its rule quota.
// Nothing was changed.
type QuotaError struct {
	Groups []QuotaExceeded
}

// QuotaExceeded is one group an apply would overfill.
type QuotaExceeded struct {
	Scope            string
	Used, Add, Quota int
}

func (e *QuotaError) Error() string {
	parts := make([]string, len(e.Groups))
	for i, g := range e.Groups {
		parts[i] = fmt.Sprintf("%s holds %d rules and the plan adds %d, past the quota of %d",
			g.Scope, g.Used, g.Add, g.Quota)
	}
	return "apply refused, nothing was changed: " + strings.Join(parts, "; ") +
		" (ingress and egress rules count together; raise quota: in the target once Alibaba raised it)"
}

// ApplyError reports an apply that stopped part-way: what was made, and per
// group what was not.
type ApplyError struct {
	Done   []plan.Change
	Failed []ScopeFailure
	// NotStarted are the changes of groups mailfw did not begin after the
	// first failure.
	NotStarted []plan.Change
}

// ScopeFailure is one group whose changes did not all take effect.
type ScopeFailure struct {
	Scope   string
	Err     error
	NotDone []plan.Change
	// Unverified is true when the rules could not be read back, so Done
	// holds what ECS said it did rather than what was seen.
	Unverified bool
}

func (e *ApplyError) Error() string {
	total := len(e.Done) + len(e.NotStarted)
	for _, f := range e.Failed {
		total += len(f.NotDone)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "apply stopped part-way: %d change(s) made", len(e.Done))
	for _, f := range e.Failed {
		fmt.Fprintf(&b, "; %s: %v; not made: %s", f.Scope, f.Err, changeList(f.NotDone))
		if f.Unverified {
			b.WriteString(" (could not read the group back to verify)")
		}
	}
	if len(e.NotStarted) > 0 {
		fmt.Fprintf(&b, "; not attempted after the failure: %d change(s) in %d group(s)",
			len(e.NotStarted), countScopes(e.NotStarted))
	}
	b.WriteString("; run plan and apply again to finish")
	return b.String()
}

func changeList(cs []plan.Change) string {
	if len(cs) == 0 {
		return "none"
	}
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = string(c.Action) + " " + c.Rule.String()
	}
	return strings.Join(parts, ", ")
}

func countScopes(cs []plan.Change) int {
	seen := map[string]bool{}
	for _, c := range cs {
		seen[c.Scope] = true
	}
	return len(seen)
}

// GroupNotFoundError says named security groups do not exist in the region.
type GroupNotFoundError struct {
	Region string
	IDs    []string
}

func (e *GroupNotFoundError) Error() string {
	return fmt.Sprintf("security group(s) %s not found in region %s", strings.Join(e.IDs, ", "), e.Region)
}
