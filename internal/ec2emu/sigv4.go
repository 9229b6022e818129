package ec2emu

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var regionPattern = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// authenticate checks the SigV4 Authorization header and returns the region
// of its credential scope. Without WithCredentials any access key is
// accepted and the signature is not checked.
func (s *Server) authenticate(r *http.Request, body []byte) (string, *apiError) {
	fail := errorf("AuthFailure", "%s", defaultMessages["AuthFailure"])
	auth := r.Header.Get("Authorization")
	alg, rest, ok := strings.Cut(auth, " ")
	if !ok || alg != "AWS4-HMAC-SHA256" {
		return "", fail
	}
	fields := map[string]string{}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[3] != "ec2" || scope[4] != "aws4_request" {
		return "", fail
	}
	akid, date, region := scope[0], scope[1], scope[2]
	if !regionPattern.MatchString(region) {
		return "", fail
	}
	s.mu.Lock()
	secret, known := s.creds[akid]
	checkKeys := s.creds != nil
	allowed := s.allowed
	s.mu.Unlock()
	if allowed != nil && !slices.Contains(allowed, region) {
		return "", fail
	}
	if !checkKeys {
		return region, nil
	}
	if !known {
		return "", fail
	}
	want := signature(r, body, secret, date, region, fields["SignedHeaders"])
	if !hmac.Equal([]byte(want), []byte(fields["Signature"])) {
		return "", fail
	}
	return region, nil
}

// signature recomputes the SigV4 signature of a POST with no query string.
func signature(r *http.Request, body []byte, secret, date, region, signed string) string {
	names := strings.Split(signed, ";")
	var canon strings.Builder
	for _, n := range names {
		canon.WriteString(n + ":" + headerValue(r, n) + "\n")
	}
	bodyHash := sha256.Sum256(body)
	creq := strings.Join([]string{
		r.Method, "/", "", canon.String(), signed, hex.EncodeToString(bodyHash[:]),
	}, "\n")
	creqHash := sha256.Sum256([]byte(creq))
	scope := date + "/" + region + "/ec2/aws4_request"
	toSign := "AWS4-HMAC-SHA256\n" + r.Header.Get("X-Amz-Date") + "\n" + scope + "\n" +
		hex.EncodeToString(creqHash[:])
	key := hmacSHA256([]byte("AWS4"+secret), date)
	for _, part := range []string{region, "ec2", "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	return hex.EncodeToString(hmacSHA256(key, toSign))
}

func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return v
		}
		return strconv.FormatInt(r.ContentLength, 10)
	}
	vals := slices.Clone(r.Header.Values(name))
	for i, v := range vals {
		vals[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(vals, ",")
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
