package alibaba

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
)

// The environment variables Alibaba Cloud SDKs and the aliyun CLI read.
const (
	envAccessKeyID     = "ALIBABA_CLOUD_ACCESS_KEY_ID"
	envAccessKeySecret = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
	envSecurityToken   = "ALIBABA_CLOUD_SECURITY_TOKEN"
	envProfile         = "ALIBABA_CLOUD_PROFILE"
	envRoleName        = "ALIBABA_CLOUD_ECS_METADATA"
	envNoMetadata      = "ALIBABA_CLOUD_ECS_METADATA_DISABLED"
)

// RAMRoleFunc builds the credentials provider of an ECS RAM role. roleName
// may be empty (the instance's attached role). The default asks the instance
// metadata service; tests inject their own so no metadata address is ever
// reached.
type RAMRoleFunc func(roleName string) (credentials.CredentialsProvider, error)

func defaultRAMRole(roleName string) (credentials.CredentialsProvider, error) {
	return credentials.NewECSRAMRoleCredentialsProviderBuilder().WithRoleName(roleName).Build()
}

// credSource is the credentials mailfw found, and where, for messages. The
// name never holds a secret.
type credSource struct {
	name     string
	provider credentials.CredentialsProvider
	region   string // region_id of a CLI profile, if any
}

// NoCredentialsError says that no step of the chain produced credentials.
type NoCredentialsError struct {
	// Tried lists each step and why it gave nothing.
	Tried []string
}

func (e *NoCredentialsError) Error() string {
	return "no Alibaba Cloud credentials found: " + strings.Join(e.Tried, "; ")
}

// resolveCredentials walks the chain: an explicit profile alone when the
// target names one; else the environment, then the aliyun CLI profile file,
// then an ECS RAM role. It makes no network call.
func resolveCredentials(profile string, o *options) (credSource, error) {
	file := o.profileFile
	if file == "" {
		home, err := os.UserHomeDir()
		if err == nil {
			file = filepath.Join(home, ".aliyun", "config.json")
		}
	}
	if profile != "" {
		return fromProfileFile(file, profile, o)
	}

	var tried []string
	id, secret := os.Getenv(envAccessKeyID), os.Getenv(envAccessKeySecret)
	switch {
	case id != "" && secret != "":
		name := "environment variables " + envAccessKeyID + " and " + envAccessKeySecret
		if tok := os.Getenv(envSecurityToken); tok != "" {
			return credSource{name: name + " with " + envSecurityToken,
				provider: credentials.NewStaticSTSCredentialsProvider(id, secret, tok)}, nil
		}
		return credSource{name: name, provider: credentials.NewStaticAKCredentialsProvider(id, secret)}, nil
	case id != "" || secret != "":
		return credSource{}, fmt.Errorf("reading Alibaba Cloud credentials from the environment: "+
			"%s and %s must be set together", envAccessKeyID, envAccessKeySecret)
	}
	tried = append(tried, "environment: "+envAccessKeyID+" is not set")

	if file != "" {
		if _, err := os.Stat(file); err == nil {
			return fromProfileFile(file, os.Getenv(envProfile), o)
		}
		tried = append(tried, "profile file "+file+": not found")
	}

	if strings.EqualFold(os.Getenv(envNoMetadata), "true") {
		tried = append(tried, "ECS RAM role: "+envNoMetadata+" is true")
		return credSource{}, &NoCredentialsError{Tried: tried}
	}
	return fromRAMRole(os.Getenv(envRoleName), o)
}

func fromRAMRole(role string, o *options) (credSource, error) {
	name := "the ECS RAM role of this instance (instance metadata)"
	if role != "" {
		name = fmt.Sprintf("ECS RAM role %q (instance metadata)", role)
	}
	p, err := o.ramRole(role)
	if err != nil {
		return credSource{}, fmt.Errorf("setting up credentials from %s: %w", name, err)
	}
	return credSource{name: name, provider: p}, nil
}

type cliProfile struct {
	Name            string `json:"name"`
	Mode            string `json:"mode"`
	AccessKeyID     string `json:"access_key_id"`
	AccessKeySecret string `json:"access_key_secret"`
	StsToken        string `json:"sts_token"`
	RAMRoleName     string `json:"ram_role_name"`
	RegionID        string `json:"region_id"`
}

type cliConfig struct {
	Current  string       `json:"current"`
	Profiles []cliProfile `json:"profiles"`
}

// fromProfileFile reads one profile of the aliyun CLI's config.json. An
// empty name picks the file's current profile, else "default".
func fromProfileFile(file, name string, o *options) (credSource, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return credSource{}, fmt.Errorf("reading Alibaba Cloud profile file: %w", err)
	}
	var cfg cliConfig
	if err := json.Unmarshal(data, &cfg); err != nil {
		return credSource{}, fmt.Errorf("reading Alibaba Cloud profile file %s: %w", file, err)
	}
	if name == "" {
		name = cfg.Current
	}
	if name == "" {
		name = "default"
	}
	var p *cliProfile
	for i := range cfg.Profiles {
		if cfg.Profiles[i].Name == name {
			p = &cfg.Profiles[i]
		}
	}
	if p == nil {
		return credSource{}, fmt.Errorf("reading Alibaba Cloud profile file %s: no profile %q", file, name)
	}
	src := fmt.Sprintf("profile %q of %s", name, file)
	switch p.Mode {
	case "AK", "":
		if p.AccessKeyID == "" || p.AccessKeySecret == "" {
			return credSource{}, fmt.Errorf("%s: access_key_id and access_key_secret must both be set", src)
		}
		return credSource{name: src, region: p.RegionID,
			provider: credentials.NewStaticAKCredentialsProvider(p.AccessKeyID, p.AccessKeySecret)}, nil
	case "StsToken":
		if p.AccessKeyID == "" || p.AccessKeySecret == "" || p.StsToken == "" {
			return credSource{}, fmt.Errorf("%s: access_key_id, access_key_secret and sts_token must be set", src)
		}
		return credSource{name: src, region: p.RegionID,
			provider: credentials.NewStaticSTSCredentialsProvider(p.AccessKeyID, p.AccessKeySecret, p.StsToken)}, nil
	case "EcsRamRole":
		c, err := fromRAMRole(p.RAMRoleName, o)
		if err != nil {
			return credSource{}, err
		}
		c.name = src + " (" + c.name + ")"
		c.region = p.RegionID
		return c, nil
	}
	// TODO: RamRoleArn, ChainableRamRoleArn and OIDC profiles need an STS
	// call mailfw cannot test against the emulator yet; they would map onto
	// the SDK's RAM-role-ARN and OIDC providers.
	return credSource{}, fmt.Errorf("%s uses mode %q, which mailfw does not support (supported: AK, StsToken, EcsRamRole)",
		src, p.Mode)
}

// sourcedProvider marks errors of the underlying provider with the source,
// so a failure to fetch credentials is told apart from an API error. It
// serialises GetCredentials: the pooled clients share one provider, and the
// SDK's refreshing providers do not guard their cache.
type sourcedProvider struct {
	mu     sync.Mutex
	inner  credentials.CredentialsProvider
	source string
}

type credFetchError struct {
	source string
	err    error
}

func (e *credFetchError) Error() string {
	return fmt.Sprintf("getting Alibaba Cloud credentials from %s: %v", e.source, e.err)
}

func (e *credFetchError) Unwrap() error { return e.err }

func (p *sourcedProvider) GetCredentials() (*credentials.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cc, err := p.inner.GetCredentials()
	if err != nil {
		return nil, &credFetchError{source: p.source, err: err}
	}
	if cc == nil {
		return nil, &credFetchError{source: p.source, err: errors.New("no credentials returned")}
	}
	return cc, nil
}

func (p *sourcedProvider) GetProviderName() string { return "mailfw/" + p.inner.GetProviderName() }
