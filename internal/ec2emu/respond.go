package ec2emu

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
)

const xmlns = "http://ec2.amazonaws.com/doc/2016-11-15/"

// apiError is an EC2 error reply.
type apiError struct {
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Status returns the HTTP status EC2 sends with an error code.
func Status(code string) int {
	switch code {
	case "AuthFailure":
		return http.StatusUnauthorized
	case "UnauthorizedOperation":
		return http.StatusForbidden
	case "DryRunOperation":
		return http.StatusPreconditionFailed
	case "RequestLimitExceeded", "Unavailable", "ServiceUnavailable":
		return http.StatusServiceUnavailable
	case "InternalError", "InternalFailure":
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// defaultMessages are the wire texts for codes a fault injects.
var defaultMessages = map[string]string{
	"RequestLimitExceeded":  "Request limit exceeded.",
	"InternalError":         "An internal error has occurred",
	"Unavailable":           "The service is unavailable. Please try again shortly.",
	"AuthFailure":           "AWS was not able to validate the provided access credentials",
	"UnauthorizedOperation": "You are not authorized to perform this operation.",
	"DryRunOperation":       "Request would have succeeded, but DryRun flag is set.",
}

type xmlErrorBody struct {
	XMLName   xml.Name   `xml:"Response"`
	Errors    []xmlError `xml:"Errors>Error"`
	RequestID string     `xml:"RequestID"`
}

type xmlError struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func writeError(w http.ResponseWriter, reqID string, e *apiError) {
	body := xmlErrorBody{Errors: []xmlError{{e.Code, e.Message}}, RequestID: reqID}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	if err := xml.NewEncoder(&buf).Encode(body); err != nil {
		panic(err) // plain strings only
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("X-Amzn-Requestid", reqID)
	w.WriteHeader(Status(e.Code))
	w.Write(buf.Bytes())
}

// head carries the requestId every success body starts with.
type head struct {
	RequestID string `xml:"requestId"`
}

func (h *head) setRequestID(id string) { h.RequestID = id }

type payload interface{ setRequestID(string) }

// encodeSuccess renders a success body: the XML declaration, then
// <{Action}Response xmlns=...> holding requestId and the payload fields.
func encodeSuccess(action, reqID string, p payload) []byte {
	p.setRequestID(reqID)
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	start := xml.StartElement{
		Name: xml.Name{Local: action + "Response"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "xmlns"}, Value: xmlns}},
	}
	if err := xml.NewEncoder(&buf).EncodeElement(p, start); err != nil {
		panic(err) // plain data only
	}
	return buf.Bytes()
}

func writeSuccess(w http.ResponseWriter, reqID string, body []byte) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.Header().Set("Server", "AmazonEC2")
	w.Header().Set("X-Amzn-Requestid", reqID)
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// Wire shapes. Element names are the lower camelCase EC2 uses.

type xmlTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func toXMLTags(tags []Tag) []xmlTag {
	out := make([]xmlTag, len(tags))
	for i, t := range tags {
		out[i] = xmlTag{t.Key, t.Value}
	}
	return out
}

type xmlRefGroup struct {
	GroupID string `xml:"groupId"`
	UserID  string `xml:"userId,omitempty"`
}

type xmlRule struct {
	ID           string       `xml:"securityGroupRuleId"`
	GroupID      string       `xml:"groupId"`
	GroupOwnerID string       `xml:"groupOwnerId,omitempty"`
	IsEgress     bool         `xml:"isEgress"`
	IPProtocol   string       `xml:"ipProtocol"`
	FromPort     int          `xml:"fromPort"`
	ToPort       int          `xml:"toPort"`
	CIDRv4       string       `xml:"cidrIpv4,omitempty"`
	CIDRv6       string       `xml:"cidrIpv6,omitempty"`
	PrefixListID string       `xml:"prefixListId,omitempty"`
	Ref          *xmlRefGroup `xml:"referencedGroupInfo,omitempty"`
	Description  string       `xml:"description,omitempty"`
	Tags         []xmlTag     `xml:"tagSet>item"`
	ARN          string       `xml:"securityGroupRuleArn,omitempty"`
}

type xmlRevokedRule struct {
	ID           string `xml:"securityGroupRuleId"`
	GroupID      string `xml:"groupId"`
	IsEgress     bool   `xml:"isEgress"`
	IPProtocol   string `xml:"ipProtocol"`
	FromPort     int    `xml:"fromPort"`
	ToPort       int    `xml:"toPort"`
	CIDRv4       string `xml:"cidrIpv4,omitempty"`
	CIDRv6       string `xml:"cidrIpv6,omitempty"`
	PrefixListID string `xml:"prefixListId,omitempty"`
	RefGroupID   string `xml:"referencedGroupId,omitempty"`
	Description  string `xml:"description,omitempty"`
}

type xmlRange struct {
	CIDR        string `xml:"cidrIp"`
	Description string `xml:"description,omitempty"`
}

type xmlRange6 struct {
	CIDR        string `xml:"cidrIpv6"`
	Description string `xml:"description,omitempty"`
}

type xmlPrefixListID struct {
	ID          string `xml:"prefixListId"`
	Description string `xml:"description,omitempty"`
}

type xmlPair struct {
	UserID      string `xml:"userId,omitempty"`
	GroupID     string `xml:"groupId"`
	Description string `xml:"description,omitempty"`
}

type xmlPermission struct {
	IPProtocol string            `xml:"ipProtocol"`
	FromPort   *int              `xml:"fromPort,omitempty"`
	ToPort     *int              `xml:"toPort,omitempty"`
	Groups     []xmlPair         `xml:"groups>item"`
	IPRanges   []xmlRange        `xml:"ipRanges>item"`
	IPv6Ranges []xmlRange6       `xml:"ipv6Ranges>item"`
	PrefixList []xmlPrefixListID `xml:"prefixListIds>item"`
}

type xmlGroup struct {
	OwnerID     string          `xml:"ownerId"`
	GroupID     string          `xml:"groupId"`
	GroupName   string          `xml:"groupName"`
	Description string          `xml:"groupDescription"`
	VPCID       string          `xml:"vpcId"`
	ARN         string          `xml:"securityGroupArn"`
	Ingress     []xmlPermission `xml:"ipPermissions>item"`
	Egress      []xmlPermission `xml:"ipPermissionsEgress>item"`
	Tags        []xmlTag        `xml:"tagSet>item"`
}

type xmlPrefixList struct {
	ID            string   `xml:"prefixListId"`
	AddressFamily string   `xml:"addressFamily"`
	State         string   `xml:"state"`
	ARN           string   `xml:"prefixListArn"`
	Name          string   `xml:"prefixListName"`
	MaxEntries    int      `xml:"maxEntries"`
	Version       int      `xml:"version"`
	Tags          []xmlTag `xml:"tags>item"`
	OwnerID       string   `xml:"ownerId"`
}

type describeGroupsResult struct {
	head
	Groups    []xmlGroup `xml:"securityGroupInfo>item"`
	NextToken string     `xml:"nextToken,omitempty"`
}

type describeRulesResult struct {
	head
	Rules     []xmlRule `xml:"securityGroupRuleSet>item"`
	NextToken string    `xml:"nextToken,omitempty"`
}

type describePrefixListsResult struct {
	head
	PrefixLists []xmlPrefixList `xml:"prefixListSet>item"`
	NextToken   string          `xml:"nextToken,omitempty"`
}

type authorizeResult struct {
	head
	Return bool      `xml:"return"`
	Rules  []xmlRule `xml:"securityGroupRuleSet>item"`
}

type revokeResult struct {
	head
	Return  bool             `xml:"return"`
	Revoked []xmlRevokedRule `xml:"revokedSecurityGroupRuleSet>item"`
	Unknown []xmlPermission  `xml:"unknownIpPermissionSet>item"`
}

type returnResult struct {
	head
	Return bool `xml:"return"`
}

type createGroupResult struct {
	head
	GroupID string   `xml:"groupId"`
	ARN     string   `xml:"securityGroupArn"`
	Tags    []xmlTag `xml:"tagSet>item"`
}
