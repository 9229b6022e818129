package alibaba

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"

	"github.com/mailfw/mailfw/plan"
	"github.com/mailfw/mailfw/providers"
)

func TestRead_wrongSecretGivesOneClearError(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	t.Setenv(envAccessKeySecret, "a-wrong-secret-value")
	var logs strings.Builder
	env := providers.Env{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	_, err := f.open(t, f.target(gid), env).Read(context.Background())

	var ce *CredentialError
	if !errors.As(err, &ce) || ce.Code != "SignatureDoesNotMatch" {
		t.Fatalf("want a CredentialError for SignatureDoesNotMatch, got %T %v", err, err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "environment variables ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET") ||
		!strings.Contains(msg, "secret does not match") {
		t.Errorf("the error does not name the source and the cause: %q", msg)
	}
	if strings.Contains(msg, "\n") || strings.Contains(msg, "string to sign") {
		t.Errorf("the error is not one line: %q", msg)
	}
	for _, out := range []string{msg, logs.String()} {
		if strings.Contains(out, "a-wrong-secret-value") || strings.Contains(out, testSecret) {
			t.Errorf("a secret was printed: %q", out)
		}
	}
	if n := f.emu.Calls(""); n != 1 {
		t.Errorf("%d calls for a refused credential, want 1 (no retry)", n)
	}
}

func TestRead_unknownKeyNamesTheProfile(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	t.Setenv(envAccessKeyID, "")
	t.Setenv(envAccessKeySecret, "")
	file := writeProfiles(t, `{"current":"prod","profiles":[{"name":"prod","mode":"AK",
		"access_key_id":"LTAInobody","access_key_secret":"x","region_id":"cn-hangzhou"}]}`)
	_, err := f.open(t, f.target(gid), providers.Env{}, WithProfileFile(file)).Read(context.Background())
	var ce *CredentialError
	if !errors.As(err, &ce) || ce.Code != "InvalidAccessKeyId.NotFound" ||
		!strings.Contains(err.Error(), `profile "prod" of `+file) {
		t.Fatalf("got %v", err)
	}
}

func writeProfiles(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// staticRAMRole stands in for the instance metadata service.
func staticRAMRole(id, secret, token string, asked *string) RAMRoleFunc {
	return func(role string) (credentials.CredentialsProvider, error) {
		*asked = role
		return credentials.NewStaticSTSCredentialsProvider(id, secret, token), nil
	}
}

func TestCredentials_chainOrder(t *testing.T) {
	profiles := `{"current":"dev","profiles":[
	  {"name":"dev","mode":"AK","access_key_id":"LTAIdev","access_key_secret":"dev-secret","region_id":"cn-shanghai"},
	  {"name":"prod","mode":"StsToken","access_key_id":"STS.prod","access_key_secret":"prod-secret","sts_token":"tok-prod"},
	  {"name":"onecs","mode":"EcsRamRole","ram_role_name":"mail-role"},
	  {"name":"assume","mode":"RamRoleArn","access_key_id":"a","access_key_secret":"b"}]}`
	env := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name       string
		env        map[string]string
		profile    string
		file       bool
		wantKey    string
		wantSource string
		wantRole   string
		wantErr    string
	}{
		{name: "env-beats-file", env: env(envAccessKeyID, "LTAIenv", envAccessKeySecret, "env-secret"),
			file: true, wantKey: "LTAIenv", wantSource: "environment variables"},
		{name: "env-with-token", env: env(envAccessKeyID, "STS.env", envAccessKeySecret, "sts-env-secret",
			envSecurityToken, "tok-env"), wantKey: "STS.env", wantSource: envSecurityToken},
		{name: "named-profile-beats-env", env: env(envAccessKeyID, "LTAIenv", envAccessKeySecret, "env-secret"),
			profile: "prod", file: true, wantKey: "STS.prod", wantSource: `profile "prod"`},
		{name: "current-profile", file: true, wantKey: "LTAIdev", wantSource: `profile "dev"`},
		{name: "profile-from-env", env: env(envProfile, "prod"), file: true, wantKey: "STS.prod",
			wantSource: `profile "prod"`},
		{name: "ecs-ram-role-profile", profile: "onecs", file: true, wantKey: "STS.role", wantRole: "mail-role",
			wantSource: `ECS RAM role "mail-role"`},
		{name: "ram-role-last", env: env(envNoMetadata, "", envRoleName, "mx-role"),
			wantKey: "STS.role", wantRole: "mx-role", wantSource: `ECS RAM role "mx-role"`},
		{name: "nothing", wantErr: "no Alibaba Cloud credentials found"},
		{name: "half-env", env: env(envAccessKeyID, "LTAIenv"), wantErr: "must be set together"},
		{name: "unsupported-mode", profile: "assume", file: true, wantErr: `mode "RamRoleArn"`},
		{name: "missing-profile", profile: "nope", file: true, wantErr: `no profile "nope"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			t.Setenv(envAccessKeyID, "")
			t.Setenv(envAccessKeySecret, "")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			for _, k := range [][3]string{{"LTAIenv", "env-secret", ""}, {"STS.env", "sts-env-secret", "tok-env"},
				{"STS.prod", "prod-secret", "tok-prod"}, {"LTAIdev", "dev-secret", ""},
				{"STS.role", "role-secret", "tok-role"}} {
				f.emu.AddAccessKey(k[0], k[1], k[2])
			}
			file := filepath.Join(t.TempDir(), "absent.json")
			if tc.file {
				file = writeProfiles(t, profiles)
			}
			gid := f.group(t, nil)
			tg := f.target(gid)
			tg.Profile = tc.profile
			var asked string
			b, err := New(context.Background(), tg, providers.Env{Logger: slog.New(slog.DiscardHandler)},
				fastRetry(), WithProfileFile(file),
				WithRAMRole(staticRAMRole("STS.role", "role-secret", "tok-role", &asked)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("want an error with %q, got %v", tc.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.creds.name, tc.wantSource) {
				t.Errorf("source %q, want it to mention %q", b.creds.name, tc.wantSource)
			}
			if _, err := b.Read(context.Background()); err != nil {
				t.Fatalf("read with the chosen credentials: %v", err)
			}
			if got := lastRequest(f, "DescribeSecurityGroups").Get("AccessKeyId"); got != tc.wantKey {
				t.Errorf("signed with %s, want %s", got, tc.wantKey)
			}
			if asked != tc.wantRole {
				t.Errorf("RAM role asked for %q, want %q", asked, tc.wantRole)
			}
		})
	}
}

func TestCredentials_regionFromProfile(t *testing.T) {
	isolate(t)
	file := writeProfiles(t, `{"current":"dev","profiles":[{"name":"dev","mode":"AK",
		"access_key_id":"LTAIdev","access_key_secret":"dev-secret","region_id":"cn-shanghai"}]}`)
	b, err := New(context.Background(), plan.Target{Name: "cn", Type: "alibaba", SecurityGroups: []string{"sg-bp1x"}},
		providers.Env{}, WithProfileFile(file))
	if err != nil {
		t.Fatal(err)
	}
	if b.region != "cn-shanghai" {
		t.Errorf("region %q, want the profile's cn-shanghai", b.region)
	}
}

func TestCredentials_ramRoleFailureNamesTheSource(t *testing.T) {
	f := newFixture(t)
	t.Setenv(envAccessKeyID, "")
	t.Setenv(envAccessKeySecret, "")
	t.Setenv(envNoMetadata, "")
	gid := f.group(t, nil)
	failing := func(string) (credentials.CredentialsProvider, error) { return brokenProvider{}, nil }
	b, err := New(context.Background(), f.target(gid), providers.Env{}, fastRetry(),
		WithProfileFile(filepath.Join(t.TempDir(), "absent.json")), WithRAMRole(failing))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Read(context.Background())
	var ce *CredentialError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "ECS RAM role of this instance") ||
		!strings.Contains(err.Error(), "metadata service unreachable") {
		t.Fatalf("got %v", err)
	}
	if n := f.emu.Calls(""); n != 0 {
		t.Errorf("%d calls without credentials", n)
	}
}

type brokenProvider struct{}

func (brokenProvider) GetCredentials() (*credentials.Credentials, error) {
	return nil, errors.New("metadata service unreachable")
}

func (brokenProvider) GetProviderName() string { return "broken" }

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in, scheme, host string
		bad              bool
	}{
		{"", "HTTPS", "", false},
		{"ecs.cn-hangzhou.aliyuncs.com", "HTTPS", "ecs.cn-hangzhou.aliyuncs.com", false},
		{"127.0.0.1:8090", "HTTPS", "127.0.0.1:8090", false},
		{"http://127.0.0.1:8090", "HTTP", "127.0.0.1:8090", false},
		{"https://ecs.example:443/", "HTTPS", "ecs.example:443", false},
		{"ftp://x", "", "", true},
		{"http://x/path", "", "", true},
		{"host/path", "", "", true},
	}
	for _, tc := range tests {
		s, h, err := parseEndpoint(tc.in)
		if (err != nil) != tc.bad || s != tc.scheme || h != tc.host {
			t.Errorf("parseEndpoint(%q) = %q, %q, %v", tc.in, s, h, err)
		}
	}
}

func TestEndpoint_bareHostUsesHTTPS(t *testing.T) {
	f := newFixture(t)
	gid := f.group(t, nil)
	srv := httptest.NewTLSServer(f.emu)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	tg := f.target(gid)
	tg.Endpoint = u.Host
	b := f.open(t, tg, providers.Env{}, WithTransport(srv.Client().Transport))
	if _, err := b.Read(context.Background()); err != nil {
		t.Fatalf("read over HTTPS from a bare host:port: %v", err)
	}
}

func TestNew_refusesBadTargets(t *testing.T) {
	f := newFixture(t)
	for name, edit := range map[string]func(*plan.Target){
		"no-region":    func(t *plan.Target) { t.Region = "" },
		"priority":     func(t *plan.Target) { t.Priority = 101 },
		"no-groups":    func(t *plan.Target) { t.SecurityGroups = nil },
		"bad-group":    func(t *plan.Target) { t.SecurityGroups = []string{"group-1"} },
		"bad-region":   func(t *plan.Target) { t.Region = "cn hangzhou" },
		"bad-endpoint": func(t *plan.Target) { t.Endpoint = "ftp://x" },
	} {
		t.Run(name, func(t *testing.T) {
			tg := f.target("sg-bp1abc")
			edit(&tg)
			if _, err := New(context.Background(), tg, providers.Env{}); err == nil {
				t.Errorf("accepted %+v", tg)
			}
		})
	}
}

func TestTransportErrorNeverShowsTheToken(t *testing.T) {
	isolate(t)
	t.Setenv(envAccessKeyID, "STS.example")
	t.Setenv(envAccessKeySecret, "sts-secret")
	t.Setenv(envSecurityToken, "token-that-must-not-leak")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var logs strings.Builder
	tg := plan.Target{Name: "cn", Type: "alibaba", Region: testRegion, SecurityGroups: []string{"sg-bp1x"},
		Endpoint: "http://" + addr}
	b, err := New(context.Background(), tg, providers.Env{
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))},
		WithBackoff(2, time.Millisecond, time.Millisecond),
		WithProfileFile(filepath.Join(t.TempDir(), "absent.json")))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Read(context.Background())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != "Transport" {
		t.Fatalf("want a transport APIError, got %v", err)
	}
	for _, out := range []string{err.Error(), logs.String()} {
		if strings.Contains(out, "token-that-must-not-leak") || strings.Contains(out, "Signature=") {
			t.Errorf("the request URL leaked: %q", out)
		}
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("the error does not name the endpoint: %q", err)
	}
}
