package aws

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/smithy-go"
)

// AuthError says AWS refused the credentials. It names where the SDK found
// them, never the keys.
type AuthError struct {
	Source string // the SDK's name for the credential provider, "" when unknown
	Err    error
}

func (e *AuthError) Error() string {
	src := e.Source
	if src == "" {
		src = "the SDK's default chain"
	}
	return fmt.Sprintf("AWS refused the credentials from %s (check the profile, AWS_ACCESS_KEY_ID "+
		"or the session token): %v", src, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// errorCode returns the EC2 error code of err, "" when it has none.
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// call runs one SDK operation (the SDK retries inside it), logs it, and
// turns a credential refusal into an *AuthError.
func (b *Backend) call(ctx context.Context, region, action string, fn func(context.Context) error) error {
	start := time.Now()
	err := fn(ctx)
	code := errorCode(err)
	b.log.Debug("ec2 call", "region", region, "action", action,
		"duration", time.Since(start), "error_code", code)
	if err == nil {
		return nil
	}
	switch code {
	case "AuthFailure", "InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException":
		ae := &AuthError{Err: err}
		if c, cerr := b.creds.Retrieve(ctx); cerr == nil {
			ae.Source = c.Source
		}
		return ae
	case "UnauthorizedOperation":
		return fmt.Errorf("%s in %s: the credentials may not call ec2:%s: %w", action, region, action, err)
	}
	return fmt.Errorf("%s in %s: %w", action, region, err)
}

// fatal reports whether an error must stop all other work at once.
func fatal(err error) bool {
	var ae *AuthError
	return errors.As(err, &ae)
}

// each runs fn for every index in [0,n), at most limit at a time. When stop
// reports true for an error, work not yet started is skipped and calls in
// flight are cancelled; the skipped ones get context.Canceled. It returns
// one error slot per index.
func each(ctx context.Context, limit, n int, stop func(error) bool, fn func(context.Context, int) error) []error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, n)
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		if ctx.Err() != nil {
			<-sem
			errs[i] = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				errs[i] = err
				if stop(err) {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	return errs
}

// firstError picks the error to report from each's result: a fatal one if
// any, else the first that is not a knock-on cancellation.
func firstError(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if fatal(err) {
			return err
		}
		if first == nil && !errors.Is(err, context.Canceled) {
			first = err
		}
	}
	if first == nil {
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
	}
	return first
}

func always(error) bool { return true }
