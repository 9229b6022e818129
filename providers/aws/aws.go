package aws

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/logging"

	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
)

// DefaultQuota is the inbound rules a security group may hold per address
// family unless the target's quota says otherwise (the AWS default).
const DefaultQuota = 60

// DefaultParallelism bounds concurrent EC2 calls when Env.Parallelism is 0.
const DefaultParallelism = 10

// defaultMaxAttempts is how often one call is tried when the user's
// configuration does not say (retry_max_attempts / AWS_MAX_ATTEMPTS). It is
// above the SDK's 3 because mailfw works on many groups at once and EC2
// throttles by account.
const defaultMaxAttempts = 8

// The mark mailfw puts on the rules it writes.
const (
	mark     = "mailfw"
	tagKey   = "managed-by"
	tagValue = "mailfw"
)

var groupIDShape = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)

var _ plan.Backend = (*Backend)(nil)

// Backend reads and writes the inbound rules of EC2 security groups in one
// or more regions.
type Backend struct {
	target   plan.Target
	log      *slog.Logger
	progress io.Writer
	parallel int
	quota    int
	regions  []string
	clients  map[string]*ec2.Client
	creds    aws.CredentialsProvider

	mu   sync.Mutex
	last map[string]*group // scope ID -> group as last read; not for use after Apply
}

// Option tunes how [New] builds the SDK clients. Tests use them; the
// command line does not.
type Option func(*options)

type options struct {
	load    []func(*config.LoadOptions) error
	backoff retry.BackoffDelayer
}

// WithLoadOptions adds options to config.LoadDefaultConfig.
func WithLoadOptions(fns ...func(*config.LoadOptions) error) Option {
	return func(o *options) { o.load = append(o.load, fns...) }
}

// WithRetryBackoff replaces the retryer's backoff, for tests that must not
// wait a second per throttled call.
func WithRetryBackoff(d retry.BackoffDelayer) Option {
	return func(o *options) { o.backoff = d }
}

// Open is the [providers.Factory] for targets of type aws.
func Open(ctx context.Context, t plan.Target, env providers.Env) (plan.Backend, error) {
	b, err := New(ctx, t, env)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// New builds a Backend. Credentials, region and endpoint come from the SDK's
// default chain as the AWS CLI reads them (environment, shared config and
// credentials files, SSO, web identity, container and instance roles), with
// the target's profile, region(s) and endpoint taking precedence.
func New(ctx context.Context, t plan.Target, env providers.Env, opts ...Option) (*Backend, error) {
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	if len(t.SecurityGroups) == 0 && (t.Select == nil || len(t.Select.Tags) == 0) {
		return nil, fmt.Errorf("target %q: name security_groups or select.tags", t.Name)
	}
	for _, id := range t.SecurityGroups {
		if !groupIDShape.MatchString(id) {
			return nil, fmt.Errorf("target %q: %q is not a security group id (sg- and 8 or 17 hex digits)",
				t.Name, id)
		}
	}
	load := []func(*config.LoadOptions) error{}
	if t.Profile != "" {
		load = append(load, config.WithSharedConfigProfile(t.Profile))
	}
	if t.Region != "" {
		load = append(load, config.WithRegion(t.Region))
	}
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	env.Logger = logger.With("backend", "aws", "target", t.Name)
	load = append(load, config.WithLogger(sdkLogger{env.Logger}))
	cfg, err := config.LoadDefaultConfig(ctx, append(load, o.load...)...)
	if err != nil {
		return nil, fmt.Errorf("target %q: loading AWS configuration: %w", t.Name, err)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = awshttp.NewBuildableClient()
	}
	cfg.HTTPClient = bodyClient{cfg.HTTPClient}
	regions := t.Regions
	if len(regions) == 0 && cfg.Region != "" {
		regions = []string{cfg.Region}
	}
	if len(regions) == 0 {
		return nil, fmt.Errorf("target %q: no region: set region or regions in the target, "+
			"or AWS_REGION or the profile's region", t.Name)
	}
	b := newBackend(t, env, cfg, slices.Compact(slices.Sorted(slices.Values(regions))), o)
	src, endpoint := b.endpointSource()
	b.log.Info("aws target configured", "regions", b.regions, "profile", t.Profile,
		"endpoint_source", src, "endpoint", endpoint, "parallelism", b.parallel, "quota", b.quota)
	return b, nil
}

func newBackend(t plan.Target, env providers.Env, cfg aws.Config, regions []string, o options) *Backend {
	b := &Backend{
		target: t, log: env.Logger, progress: env.Progress,
		parallel: env.Parallelism, quota: t.Quota, regions: regions,
		clients: map[string]*ec2.Client{}, creds: cfg.Credentials,
	}
	if b.parallel <= 0 {
		b.parallel = DefaultParallelism
	}
	if b.quota <= 0 {
		b.quota = DefaultQuota
	}
	for _, r := range regions {
		b.clients[r] = ec2.NewFromConfig(cfg, func(eo *ec2.Options) {
			eo.Region = r
			eo.Retryer = retryer(cfg, o.backoff)
			if t.Endpoint != "" {
				eo.BaseEndpoint = aws.String(t.Endpoint)
			}
		})
	}
	return b
}

// retryer is the SDK's standard retryer, or its adaptive mode (client-side
// rate limiting after throttles) when the user's configuration asks for
// retry_mode = adaptive.
func retryer(cfg aws.Config, backoff retry.BackoffDelayer) aws.Retryer {
	attempts := cfg.RetryMaxAttempts
	if attempts <= 0 {
		attempts = defaultMaxAttempts
	}
	std := func(so *retry.StandardOptions) {
		so.MaxAttempts = attempts
		if backoff != nil {
			so.Backoff = backoff
		}
	}
	if cfg.RetryMode == aws.RetryModeAdaptive {
		return retry.NewAdaptiveMode(func(ao *retry.AdaptiveModeOptions) {
			ao.StandardOptions = append(ao.StandardOptions, std)
		})
	}
	return retry.NewStandard(std)
}

// Capabilities says what security groups can express: allow rules only, no
// connection limits, IPv6 and cloud references, and AWS's description rules.
func (b *Backend) Capabilities() plan.Capabilities {
	return plan.Capabilities{IPv6: true, CloudRefs: true, Description: checkDescription}
}

// Regions lists the regions the backend works in.
func (b *Backend) Regions() []string { return slices.Clone(b.regions) }

// endpointSource says where the EC2 endpoint comes from: "target" (the
// target's endpoint), "environment" (AWS_ENDPOINT_URL_EC2 or
// AWS_ENDPOINT_URL), "shared config" (endpoint_url in the profile or its
// services section) or "default" (the SDK's per-region endpoint). The
// endpoint is returned as scheme and host only, so that credentials or a
// query string in the URL are never logged; "" for the default.
func (b *Backend) endpointSource() (source, endpoint string) {
	var base *string
	for _, c := range b.clients {
		base = c.Options().BaseEndpoint
		break
	}
	switch {
	case base == nil:
		return "default", ""
	case b.target.Endpoint != "":
		source = "target"
	case os.Getenv("AWS_ENDPOINT_URL_EC2") != "" || os.Getenv("AWS_ENDPOINT_URL") != "":
		source = "environment"
	default:
		source = "shared config"
	}
	u, err := url.Parse(*base)
	if err != nil || u.Host == "" {
		return source, "(not a URL)"
	}
	return source, u.Scheme + "://" + u.Host
}

func scopeID(region, groupID string) string { return groupID + " (" + region + ")" }

// bodyClient works around a race between smithy-go and net/http. Once a
// response has arrived, the SDK closes the request body, and the closed
// body's WriteTo returns io.EOF. When net/http has not yet made its last
// read of the sent body (the check for extra bytes after Content-Length),
// that read goes through WriteTo, takes the io.EOF for a failed write and
// closes the connection while the response body is still being read. The
// call then fails with "use of closed network connection" and is retried
// although EC2 ran it (a write then meets its own duplicate). Hiding WriteTo
// makes net/http use Read, which reports the end of a closed body properly.
type bodyClient struct{ next aws.HTTPClient }

func (c bodyClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = readCloser{req.Body}
	}
	return c.next.Do(req)
}

// readCloser has only the methods of io.ReadCloser, whatever its content has.
type readCloser struct{ io.ReadCloser }

// sdkLogger sends the SDK's own log lines (a body it could not drain, a
// deprecated setting) to the backend's logger.
type sdkLogger struct{ log *slog.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	l.log.Log(context.Background(), level, "aws sdk: "+fmt.Sprintf(format, v...))
}
