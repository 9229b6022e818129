package aws

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/mailfw/mailfw/plan"
)

// descriptionChars is the set EC2 accepts in rule descriptions besides
// letters and digits (EC2 API reference, IpRange.Description).
const descriptionChars = " ._-:/()#,@[]+=&;{}!$*"

// checkDescription is Capabilities.Description: it keeps the text as it is
// and refuses what EC2 would refuse, with the mark's "mailfw: " counted in
// the 255 characters.
func checkDescription(d string) (string, error) {
	for _, c := range d {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.ContainsRune(descriptionChars, c)
		if !ok {
			return "", fmt.Errorf("description %q: AWS does not allow the character %q in rule "+
				"descriptions (allowed: letters, digits and %q)", d, c, descriptionChars)
		}
	}
	if n := len(markedDescription(d)); n > 255 {
		return "", fmt.Errorf("description %q is too long for AWS: %d characters with the %q mark, "+
			"255 at most", d, n, mark+": ")
	}
	return d, nil
}

// markedDescription is the rule description mailfw writes.
func markedDescription(d string) string {
	if d == "" {
		return mark
	}
	return mark + ": " + d
}

// unmark splits a description into whether it carries the mark and the
// text after it.
func unmark(d string) (bool, string) {
	if d == mark {
		return true, ""
	}
	if rest, ok := strings.CutPrefix(d, mark+":"); ok {
		return true, strings.TrimSpace(rest)
	}
	return false, d
}

// groupRef renders a referenced group as a source. A group of the account
// that owns the rule's group is "sg-…"; another account's is
// "sg-…/ACCOUNT". The policy must name groups the same way for them to
// round-trip without a diff.
func groupRef(groupID, userID, ownerID string) string {
	if userID == "" || userID == ownerID {
		return groupID
	}
	return groupID + "/" + userID
}

// observe translates one ingress rule. Rules that cannot carry TCP (ICMP,
// other IP protocols) are left out: they never grant a mail port.
func observe(r types.SecurityGroupRule) (plan.Observed, bool) {
	o := plan.Observed{ID: aws.ToString(r.SecurityGroupRuleId), Verdict: plan.Allow,
		Origin: aws.ToString(r.SecurityGroupRuleId)}
	switch p := aws.ToString(r.IpProtocol); p {
	case "tcp", "6":
		o.Protocol = "tcp"
	case "udp", "17":
		o.Protocol = "udp"
	case "-1":
		o.Protocol = "all"
	default:
		return plan.Observed{}, false
	}
	o.PortFrom, o.PortTo = 1, 65535
	if o.Protocol != "all" {
		o.PortFrom = max(int(aws.ToInt32(r.FromPort)), 1)
		o.PortTo = min(int(aws.ToInt32(r.ToPort)), 65535)
	}
	switch {
	case r.CidrIpv4 != nil || r.CidrIpv6 != nil:
		src, fam, err := plan.CanonicalSource(aws.ToString(r.CidrIpv4) + aws.ToString(r.CidrIpv6))
		if err != nil {
			return plan.Observed{}, false
		}
		o.Source, o.Family = src, fam
	case r.PrefixListId != nil:
		o.Source, o.Family = aws.ToString(r.PrefixListId), plan.FamilyAny
	case r.ReferencedGroupInfo != nil:
		ref := r.ReferencedGroupInfo
		o.Source = groupRef(aws.ToString(ref.GroupId), aws.ToString(ref.UserId), aws.ToString(r.GroupOwnerId))
		o.Family = plan.FamilyAny
	default:
		return plan.Observed{}, false
	}
	raw := aws.ToString(r.Description)
	owned, desc := unmark(raw)
	for _, t := range r.Tags {
		// The tag survives ModifySecurityGroupRules, so a tagged rule that
		// someone gave a description of their own is theirs now; the tag
		// alone marks a rule only while its description is empty.
		if aws.ToString(t.Key) == tagKey && aws.ToString(t.Value) == tagValue && raw == "" {
			owned = true
		}
	}
	o.Owned, o.Description = owned, desc
	return o, true
}

// source is a rule source split into what the EC2 API takes.
type source struct {
	cidrV4, cidrV6 string
	prefixList     string
	groupID, user  string
}

func parseSource(s string) (source, error) {
	switch {
	case strings.HasPrefix(s, "pl-"):
		return source{prefixList: s}, nil
	case strings.HasPrefix(s, "sg-"):
		id, user, _ := strings.Cut(s, "/")
		if !groupIDShape.MatchString(id) {
			return source{}, fmt.Errorf("%q is not a security group reference (sg-ID or sg-ID/ACCOUNT)", s)
		}
		return source{groupID: id, user: user}, nil
	}
	canon, fam, err := plan.CanonicalSource(s)
	if err != nil {
		return source{}, err
	}
	if fam == plan.IPv6 {
		return source{cidrV6: canon}, nil
	}
	return source{cidrV4: canon}, nil
}

// matches reports whether an ingress rule has exactly this source.
func (s source) matches(r types.SecurityGroupRule) bool {
	switch {
	case s.cidrV4 != "":
		return aws.ToString(r.CidrIpv4) == s.cidrV4
	case s.cidrV6 != "":
		return aws.ToString(r.CidrIpv6) == s.cidrV6
	case s.prefixList != "":
		return aws.ToString(r.PrefixListId) == s.prefixList
	}
	ref := r.ReferencedGroupInfo
	if ref == nil || aws.ToString(ref.GroupId) != s.groupID {
		return false
	}
	return s.user == "" || aws.ToString(ref.UserId) == s.user
}

// permissions packs additions, or description updates, into one
// IpPermission per protocol and port, each source described as mailfw
// writes it, as a single AuthorizeSecurityGroupIngress or
// UpdateSecurityGroupRuleDescriptionsIngress takes them.
func permissions(cs []plan.Change) ([]types.IpPermission, error) {
	return pack(cs, true)
}

// revokePermissions packs removals the same way, without descriptions:
// RevokeSecurityGroupIngress matches protocol, ports and source exactly and
// ignores the description.
func revokePermissions(rms []plan.Change) ([]types.IpPermission, error) {
	return pack(rms, false)
}

func pack(cs []plan.Change, describe bool) ([]types.IpPermission, error) {
	var perms []types.IpPermission
	index := map[string]int{}
	for _, c := range cs {
		src, err := parseSource(c.Rule.Source)
		if err != nil {
			return nil, err
		}
		if c.Rule.Protocol != "tcp" && c.Rule.Protocol != "udp" {
			return nil, fmt.Errorf("change %s %s: only single-port TCP or UDP rules can be written",
				c.Action, c.Rule)
		}
		k := fmt.Sprintf("%s/%d", c.Rule.Protocol, c.Rule.Port)
		i, ok := index[k]
		if !ok {
			i = len(perms)
			index[k] = i
			port := int32(c.Rule.Port)
			perms = append(perms, types.IpPermission{IpProtocol: aws.String(c.Rule.Protocol),
				FromPort: aws.Int32(port), ToPort: aws.Int32(port)})
		}
		var desc *string
		if describe {
			desc = aws.String(markedDescription(c.Rule.Description))
		}
		p := &perms[i]
		switch {
		case src.cidrV4 != "":
			p.IpRanges = append(p.IpRanges, types.IpRange{CidrIp: aws.String(src.cidrV4), Description: desc})
		case src.cidrV6 != "":
			p.Ipv6Ranges = append(p.Ipv6Ranges, types.Ipv6Range{CidrIpv6: aws.String(src.cidrV6), Description: desc})
		case src.prefixList != "":
			p.PrefixListIds = append(p.PrefixListIds,
				types.PrefixListId{PrefixListId: aws.String(src.prefixList), Description: desc})
		default:
			pair := types.UserIdGroupPair{GroupId: aws.String(src.groupID), Description: desc}
			if src.user != "" {
				pair.UserId = aws.String(src.user)
			}
			p.UserIdGroupPairs = append(p.UserIdGroupPairs, pair)
		}
	}
	return perms, nil
}

// present reports whether an ingress rule already grants exactly the added
// rule (TCP, that one port, that source).
func present(c plan.Change, rules []types.SecurityGroupRule) bool {
	src, err := parseSource(c.Rule.Source)
	if err != nil {
		return false
	}
	for _, r := range rules {
		if aws.ToString(r.IpProtocol) == "tcp" && int(aws.ToInt32(r.FromPort)) == c.Rule.Port &&
			int(aws.ToInt32(r.ToPort)) == c.Rule.Port && src.matches(r) {
			return true
		}
	}
	return false
}
