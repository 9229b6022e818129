package plan

// Target is one entry of the policy's targets list. Which fields apply
// depends on Type; the policy loader rejects a field that the type does not
// use.
type Target struct {
	Name string `yaml:"name" json:"name"`
	Type string `yaml:"type" json:"type"` // auto | iptables | ufw | firewalld | aws | alibaba

	// firewalld
	Zone string `yaml:"zone,omitempty" json:"zone,omitempty"`

	// cloud
	Region         string   `yaml:"region,omitempty" json:"region,omitempty"`
	Regions        []string `yaml:"regions,omitempty" json:"regions,omitempty"`
	SecurityGroups []string `yaml:"security_groups,omitempty" json:"security_groups,omitempty"`
	Select         *Select  `yaml:"select,omitempty" json:"select,omitempty"`
	Profile        string   `yaml:"profile,omitempty" json:"profile,omitempty"`
	Endpoint       string   `yaml:"endpoint,omitempty" json:"endpoint,omitempty"`
	Priority       int      `yaml:"priority,omitempty" json:"priority,omitempty"`
	// Quota overrides the provider's default rules-per-group quota.
	Quota int `yaml:"quota,omitempty" json:"quota,omitempty"`

	// ufw: Enable lets mailfw enable an inactive ufw, and only when an SSH
	// allow exists.
	Enable bool `yaml:"enable,omitempty" json:"enable,omitempty"`

	// Line and Column locate the entry in the policy file.
	Line   int `yaml:"-" json:"-"`
	Column int `yaml:"-" json:"-"`
}

// Select picks cloud security groups by their tags (all must match) and,
// for Alibaba, optionally by VPC.
type Select struct {
	Tags  map[string]string `yaml:"tags,omitempty" json:"tags,omitempty"`
	VPCID string            `yaml:"vpc_id,omitempty" json:"vpc_id,omitempty"`
}
