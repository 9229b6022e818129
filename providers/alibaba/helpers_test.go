package alibaba

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"

	"github.com/mailfw/mailfw/internal/ecsemu"
	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
)

const (
	testRegion = "cn-hangzhou"
	testKeyID  = "LTAItestkeyid0001"
	testSecret = "test-secret-do-not-print"
	testVPC    = "vpc-bp1testvpc000001"
)

// isolate clears every variable the credential chain reads, points HOME at
// an empty directory and turns the metadata step off, so no test can pick up
// a developer's credentials or reach an instance metadata address.
func isolate(t testing.TB) {
	t.Helper()
	for _, k := range []string{envAccessKeyID, envAccessKeySecret, envSecurityToken, envProfile, envRoleName,
		"ALIBABA_CLOUD_CREDENTIALS_URI", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
		t.Setenv(k, "")
	}
	t.Setenv(envNoMetadata, "true")
	t.Setenv("HOME", t.TempDir())
}

type fixture struct {
	emu *ecsemu.Emulator
	srv *httptest.Server
}

// newFixture starts an emulator on 127.0.0.1 with the test key, and sets
// the test key in the environment.
func newFixture(t testing.TB) *fixture {
	t.Helper()
	isolate(t)
	emu := ecsemu.New()
	emu.AddAccessKey(testKeyID, testSecret, "")
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	t.Setenv(envAccessKeyID, testKeyID)
	t.Setenv(envAccessKeySecret, testSecret)
	return &fixture{emu: emu, srv: srv}
}

func (f *fixture) group(t testing.TB, tags map[string]string) string {
	t.Helper()
	id, err := f.emu.AddGroup(ecsemu.Group{Region: testRegion, VpcID: testVPC, Tags: tags})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) rule(t testing.TB, gid string, r ecsemu.Rule) string {
	t.Helper()
	id, err := f.emu.AddRule(gid, r)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *fixture) target(groups ...string) plan.Target {
	return plan.Target{Name: "cn", Type: "alibaba", Region: testRegion, SecurityGroups: groups,
		Endpoint: f.srv.URL, Priority: 1}
}

// fastRetry keeps retries but shrinks their backoff to milliseconds.
func fastRetry() Option { return WithBackoff(10, time.Millisecond, 4*time.Millisecond) }

func (f *fixture) open(t testing.TB, tg plan.Target, env providers.Env, opts ...Option) *Backend {
	t.Helper()
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	opts = append([]Option{fastRetry(), WithProfileFile(filepath.Join(t.TempDir(), "none.json")),
		WithRAMRole(noRAMRole(t))}, opts...)
	b, err := New(context.Background(), tg, env, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// noRAMRole fails the test if the chain ever gets to the RAM role step.
func noRAMRole(t testing.TB) RAMRoleFunc {
	return func(string) (credentials.CredentialsProvider, error) {
		t.Errorf("the credential chain reached the ECS RAM role step")
		return nil, context.Canceled
	}
}

// successes counts the calls per action that the emulator served.
func (f *fixture) successes() map[string]int {
	m := map[string]int{}
	for _, r := range f.emu.Requests() {
		if r.Status == 200 {
			m[r.Action]++
		}
	}
	return m
}

func mustPolicy(t testing.TB, src string) *plan.Policy {
	t.Helper()
	p, err := plan.ParsePolicy("mailfw.yaml", []byte(src))
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	return p
}

// policyFor writes a policy whose alibaba target names the given groups.
const mxPolicy = `version: 1
sources:
  office: [203.0.113.0/24, "2001:db8:10::/48"]
allow:
  - port: smtp
    from: [anywhere]
  - port: submission
    from: [office]
    description: office clients
targets:
  - name: cn
    type: alibaba
    region: cn-hangzhou
    security_groups: [sg-bp1placeholder]
`
