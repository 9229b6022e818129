package alibaba

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk"
	"github.com/aliyun/alibaba-cloud-sdk-go/services/ecs"

	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
)

var _ plan.Backend = (*Backend)(nil)

var _ providers.Factory = Open

// Defaults of a target.
const (
	DefaultPriority    = 1
	DefaultQuota       = 200
	DefaultParallelism = 10
)

// Mark starts the description of every rule mailfw writes.
const Mark = "mailfw"

// maxDescription is the longest rule description ECS stores.
const maxDescription = 512

// Backend reads and writes the inbound rules of the ECS security groups of
// one target in one region.
type Backend struct {
	target   plan.Target
	region   string
	priority int
	quota    int
	parallel int
	logger   *slog.Logger
	progress io.Writer
	progMu   sync.Mutex
	creds    credSource
	retry    retryPolicy
	pool     chan *pooledClient
}

// Option tunes a Backend; tests use them.
type Option func(*options)

type options struct {
	transport   http.RoundTripper
	profileFile string
	ramRole     RAMRoleFunc
	retry       retryPolicy
}

type retryPolicy struct {
	attempts  int
	base, max time.Duration
}

// WithTransport sends requests through rt instead of a transport of the
// backend's own.
func WithTransport(rt http.RoundTripper) Option { return func(o *options) { o.transport = rt } }

// WithProfileFile reads the aliyun CLI profiles from path instead of
// ~/.aliyun/config.json.
func WithProfileFile(path string) Option { return func(o *options) { o.profileFile = path } }

// WithRAMRole replaces the instance-metadata lookup of ECS RAM role
// credentials.
func WithRAMRole(f RAMRoleFunc) Option { return func(o *options) { o.ramRole = f } }

// WithBackoff sets how often a throttled or failed call is tried (attempts,
// at least 1) and the backoff before the second try (doubling up to max).
func WithBackoff(attempts int, base, max time.Duration) Option {
	return func(o *options) { o.retry = retryPolicy{attempts: max1(attempts), base: base, max: max} }
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// Open is the providers.Factory of target type "alibaba".
func Open(ctx context.Context, t plan.Target, env providers.Env) (plan.Backend, error) {
	b, err := New(ctx, t, env)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// New builds the backend of t. It resolves credentials but calls no API.
func New(ctx context.Context, t plan.Target, env providers.Env, opts ...Option) (*Backend, error) {
	o := &options{ramRole: defaultRAMRole,
		retry: retryPolicy{attempts: 8, base: 200 * time.Millisecond, max: 5 * time.Second}}
	for _, opt := range opts {
		opt(o)
	}
	creds, err := resolveCredentials(t.Profile, o)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", t.Name, err)
	}
	b := &Backend{target: t, region: t.Region, priority: t.Priority, quota: t.Quota,
		parallel: env.Parallelism, logger: env.Logger, progress: env.Progress, creds: creds, retry: o.retry}
	if b.region == "" {
		b.region = creds.region
	}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("target %q: %w", t.Name, err)
	}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	b.logger = b.logger.With("backend", "alibaba", "target", t.Name, "region", b.region)
	if err := b.buildPool(o.transport); err != nil {
		return nil, fmt.Errorf("target %q: %w", t.Name, err)
	}
	b.logger.Info("credentials chosen", "source", creds.name)
	return b, nil
}

func (b *Backend) validate() error {
	if b.region == "" {
		return fmt.Errorf("no region: set region: in the target")
	}
	if strings.Trim(b.region, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != "" {
		return fmt.Errorf("region %q is not a region id", b.region)
	}
	if b.priority == 0 {
		b.priority = DefaultPriority
	}
	if b.priority < 1 || b.priority > 100 {
		return fmt.Errorf("priority %d is outside Alibaba's 1-100", b.priority)
	}
	if b.quota == 0 {
		b.quota = DefaultQuota
	}
	if b.parallel <= 0 {
		b.parallel = DefaultParallelism
	}
	if len(b.target.SecurityGroups) == 0 && b.target.Select == nil {
		return fmt.Errorf("no security groups: set security_groups: or select:")
	}
	for _, id := range b.target.SecurityGroups {
		if !strings.HasPrefix(id, "sg-") {
			return fmt.Errorf("%q is not a security group id (sg-...)", id)
		}
	}
	return nil
}

// Capabilities implements plan.Backend.
func (b *Backend) Capabilities() plan.Capabilities {
	return plan.Capabilities{Deny: true, Limit: false, IPv6: true, CloudRefs: true,
		ShadowedAllowIsError: true, Description: Description}
}

// Description is the text mailfw stores after the mark for an entry's
// description, or why ECS cannot hold it: a rule description is at most 512
// characters with the "mailfw: " prefix, and mailfw writes no control
// characters into it.
func Description(s string) (string, error) {
	s = strings.TrimSpace(s)
	if strings.ContainsFunc(s, unicode.IsControl) {
		return "", fmt.Errorf("description %q holds a control character (a newline or tab), "+
			"which mailfw does not write into an Alibaba rule description", s)
	}
	if n := utf8.RuneCountInString(mark(s)); n > maxDescription {
		return "", fmt.Errorf("description is %d characters; an Alibaba rule description holds %d "+
			"and mailfw's prefix %q leaves %d", utf8.RuneCountInString(s), maxDescription,
			Mark+": ", maxDescription-len(Mark+": "))
	}
	return s, nil
}

// mark is the stored description of a rule whose entry says desc.
func mark(desc string) string {
	if desc == "" {
		return Mark
	}
	return Mark + ": " + desc
}

// unmark splits a stored description into (owned, text after the mark).
func unmark(s string) (bool, string) {
	if s == Mark {
		return true, ""
	}
	if rest, ok := strings.CutPrefix(s, Mark+":"); ok {
		return true, strings.TrimSpace(rest)
	}
	return false, s
}

// --- clients ---

// ctxTransport gives the SDK's requests, which carry no context, the
// context of the call in flight. Each pooled client has its own, and a
// client serves one call at a time.
//
// NOTE: its type is not *http.Transport on purpose: the SDK rewrites the
// fields of an *http.Transport on every call, which races when calls run
// concurrently.
type ctxTransport struct {
	base http.RoundTripper
	ctx  context.Context
}

func (t *ctxTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.ctx != nil {
		r = r.WithContext(t.ctx)
	}
	return t.base.RoundTrip(r)
}

type pooledClient struct {
	c  *ecs.Client
	rt *ctxTransport
}

func (b *Backend) buildPool(rt http.RoundTripper) error {
	scheme, host, err := parseEndpoint(b.target.Endpoint)
	if err != nil {
		return err
	}
	if rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = b.parallel
		tr.DialContext = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
		rt = tr
	}
	b.pool = make(chan *pooledClient, b.parallel)
	creds := &sourcedProvider{inner: b.creds.provider, source: b.creds.name}
	for range b.parallel {
		pc := &pooledClient{rt: &ctxTransport{base: rt}}
		cfg := sdk.NewConfig()
		cfg.Transport = pc.rt
		cfg.Scheme = scheme
		c, err := ecs.NewClientWithOptions(b.region, cfg, creds)
		if err != nil {
			return fmt.Errorf("creating the ECS client: %w", err)
		}
		c.Domain = host
		pc.c = c
		b.pool <- pc
	}
	return nil
}

// parseEndpoint splits an endpoint override into the SDK's scheme and
// domain. A bare host[:port] uses HTTPS; a URL says its own scheme. No
// override leaves the domain to the SDK's region map, over HTTPS.
func parseEndpoint(ep string) (scheme, host string, err error) {
	if ep == "" {
		return "HTTPS", "", nil
	}
	if !strings.Contains(ep, "://") {
		if strings.ContainsAny(ep, "/?#") {
			return "", "", fmt.Errorf("endpoint %q: want host[:port] or a URL", ep)
		}
		return "HTTPS", ep, nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return "", "", fmt.Errorf("endpoint %q: %w", ep, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") != "" {
		return "", "", fmt.Errorf("endpoint %q: want http://host[:port] or https://host[:port]", ep)
	}
	return strings.ToUpper(u.Scheme), u.Host, nil
}

// call runs fn with a pooled client, retrying what retryable allows with
// exponential backoff and full jitter. The SDK itself never retries a
// Throttling refusal (HTTP 400), so this is the only retry there is.
func (b *Backend) call(ctx context.Context, action string, fn func(*ecs.Client) error) error {
	var last error
	for attempt := 1; attempt <= b.retry.attempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("ecs %s: %w", action, err)
		}
		var pc *pooledClient
		select {
		case pc = <-b.pool:
		case <-ctx.Done():
			return fmt.Errorf("ecs %s: %w", action, ctx.Err())
		}
		start := time.Now()
		err := b.run(ctx, pc, fn)
		b.pool <- pc
		if err == nil {
			b.logger.Debug("ecs call", "action", action, "attempt", attempt, "duration", time.Since(start))
			return nil
		}
		last = b.convert(action, err)
		ae, ok := last.(*APIError)
		b.logger.Debug("ecs call failed", "action", action, "attempt", attempt,
			"duration", time.Since(start), "error", last)
		if !ok || !ae.retryable() || attempt == b.retry.attempts {
			break
		}
		d := b.backoff(attempt)
		b.logger.Warn("ecs call refused, backing off", "action", action, "code", ae.Code,
			"attempt", attempt, "backoff", d)
		if err := sleep(ctx, d); err != nil {
			return fmt.Errorf("ecs %s: %w", action, err)
		}
	}
	return last
}

// run calls fn and turns an SDK panic (it panics on some malformed error
// bodies) into an error.
func (b *Backend) run(ctx context.Context, pc *pooledClient, fn func(*ecs.Client) error) (err error) {
	pc.rt.ctx = ctx
	defer func() {
		pc.rt.ctx = nil
		if r := recover(); r != nil {
			err = fmt.Errorf("the ECS SDK failed on the reply: %v", r)
		}
	}()
	return fn(pc.c)
}

func (b *Backend) backoff(attempt int) time.Duration {
	d := b.retry.base << (attempt - 1)
	if d > b.retry.max || d <= 0 {
		d = b.retry.max
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// forEach runs fn for 0..n-1 with at most b.parallel at once. After the
// first error it starts no more and returns that error.
func (b *Backend) forEach(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, b.parallel)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// progressf writes a progress line when the caller asked for them.
func (b *Backend) progressf(format string, args ...any) {
	if b.progress == nil {
		return
	}
	b.progMu.Lock()
	defer b.progMu.Unlock()
	fmt.Fprintf(b.progress, "alibaba %s (%s): "+format+"\n", append([]any{b.target.Name, b.region}, args...)...)
}

// progressStep reports done of total at every tenth and at the end.
func (b *Backend) progressStep(verb string, done, total int) {
	step := max(total/10, 1)
	if done == total || done%step == 0 {
		b.progressf("%s %d/%d security groups", verb, done, total)
	}
}
