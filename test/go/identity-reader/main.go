// A third, independent reader of identity profile v1 / v1.1 / v1.2 (docs/identity.md), in Go with the
// standard library only: crypto/x509 parses the certificate envelope, encoding/asn1 the
// subjectDirectoryAttributes value. test/identity/delegation-vectors.test.ts runs it on the
// golden vectors and compares its JSON lines with the TypeScript decoder and the Python oracle.
//
// Usage: go run . CERT.der [CERT.der ...]   (one JSON object per certificate on stdout)
package main

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
)

var (
	oidSDA     = asn1.ObjectIdentifier{2, 5, 29, 9}
	oidGroup   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 10, 4}
	oidRole    = asn1.ObjectIdentifier{2, 5, 4, 72}
	oidAccess  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 10, 2}
	principalR = regexp.MustCompile(`^spiffe://([a-z0-9._-]+)/(user|service)/([A-Za-z0-9._-]{1,128})$`)
	roleR      = regexp.MustCompile(`^spiffe://([a-z0-9._-]+)/role/([A-Za-z0-9][A-Za-z0-9._-]{0,63})$`)
	nameR      = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

type refusal struct{ code, msg string }

func (r refusal) Error() string { return r.msg }
func refuse(code, format string, a ...any) refusal {
	return refusal{"IDENTITY_" + code, fmt.Sprintf(format, a...)}
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values []asn1.RawValue `asn1:"set"`
}

type delegator struct {
	Principal string   `json:"principal"`
	Teams     []string `json:"teams"`
	Roles     []string `json:"roles"`
	Tools     []string `json:"tools,omitempty"`
}

type result struct {
	File        string     `json:"file"`
	OK          bool       `json:"ok"`
	Code        string     `json:"code,omitempty"`
	Message     string     `json:"message,omitempty"`
	Principal   string     `json:"principal,omitempty"`
	Teams       []string   `json:"teams"`
	Roles       []string   `json:"roles"`
	ActingFor   *delegator `json:"actingFor,omitempty"`
	Serial      string     `json:"serial,omitempty"`
	Fingerprint string     `json:"fingerprint,omitempty"`
}

// elements of a constructed value's content, each a whole TLV
func elements(content []byte) ([]asn1.RawValue, error) {
	var out []asn1.RawValue
	for len(content) > 0 {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(content, &v)
		if err != nil {
			return nil, refuse("MALFORMED", "not DER: %v", err)
		}
		out = append(out, v)
		content = rest
	}
	return out, nil
}

// a GeneralName that is a uniformResourceIdentifier: [6] IMPLICIT IA5String
func uri(v asn1.RawValue, what string) (string, error) {
	if v.Class != asn1.ClassContextSpecific || v.Tag != 6 || v.IsCompound {
		return "", refuse("BAD_VALUE_TYPE", "%s is not a uniformResourceIdentifier", what)
	}
	return string(v.Bytes), nil
}

// an optional leading [0] IMPLICIT GeneralNames of exactly one URI (v1.1: the delegator)
func authority(parts []asn1.RawValue, what string) (*string, []asn1.RawValue, error) {
	if len(parts) == 0 || parts[0].Class != asn1.ClassContextSpecific || parts[0].Tag != 0 {
		return nil, parts, nil
	}
	names, err := elements(parts[0].Bytes)
	if err != nil {
		return nil, nil, err
	}
	if len(names) != 1 {
		return nil, nil, refuse("BAD_VALUE_TYPE", "%s names %d authorities", what, len(names))
	}
	u, err := uri(names[0], what)
	return &u, parts[1:], err
}

// profile v1.2: a tool-scoped SvceAuthInfo.service, spiffe://<td>/tool/<glob percent-encoded>
var (
	toolServiceR = regexp.MustCompile(`^(spiffe://[^/]+)/tool/([^/]*)$`)
	toolEncR     = regexp.MustCompile(`^(?:[A-Za-z0-9._~*-]|%[0-9A-F]{2})+$`)
)

// every octet outside A-Z a-z 0-9 . _ ~ * - as %XX, uppercase: the one spelling
func toolEscape(s string) string {
	out := ""
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strings.IndexByte("._~*-", c) >= 0 {
			out += string(c)
		} else {
			out += fmt.Sprintf("%%%02X", c)
		}
	}
	return out
}

// the policy's glob syntax, as far as a reader must check it: 1-128 printable ASCII, braces balanced, brackets closed
func validGlob(g string) bool {
	if len(g) == 0 || len(g) > 128 {
		return false
	}
	depth := 0
	for i := 0; i < len(g); i++ {
		c := g[i]
		if c < 0x21 || c > 0x7e {
			return false
		}
		switch c {
		case '\\':
			i++
			if i >= len(g) {
				return false
			}
		case '[':
			j := strings.IndexByte(g[i+1:], ']')
			if j < 0 {
				return false
			}
			i += j + 1
		case '{':
			depth++
		case '}':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}

func readSDA(value []byte, td, holder string) (teams, roles, tools []string, actingFor string, err error) {
	var attrs []attribute
	rest, err := asn1.Unmarshal(value, &attrs)
	if err != nil || len(rest) != 0 || len(attrs) == 0 {
		return nil, nil, nil, "", refuse("MALFORMED", "subjectDirectoryAttributes is not a SEQUENCE OF Attribute")
	}
	seen := map[string]bool{}
	var authorities []*string
	for _, a := range attrs {
		known := a.Type.Equal(oidGroup) || a.Type.Equal(oidRole) || a.Type.Equal(oidAccess)
		if !known {
			continue
		}
		if seen[a.Type.String()] {
			return nil, nil, nil, "", refuse("DUPLICATE_ATTRIBUTE", "attribute %s twice", a.Type)
		}
		seen[a.Type.String()] = true
		switch {
		case a.Type.Equal(oidAccess):
			// v1.1: one SvceAuthInfo for the trust domain; v1.2: one per tool glob, service spiffe://<td>/tool/<glob>
			if len(a.Values) == 0 {
				return nil, nil, nil, "", refuse("BAD_VALUE_TYPE", "accessIdentity without a value")
			}
			scopedCount := 0
			for i, v := range a.Values {
				if v.Tag != asn1.TagSequence {
					return nil, nil, nil, "", refuse("BAD_VALUE_TYPE", "accessIdentity must be SvceAuthInfo")
				}
				parts, err := elements(v.Bytes)
				if err != nil {
					return nil, nil, nil, "", err
				}
				if len(parts) != 2 {
					return nil, nil, nil, "", refuse("BAD_VALUE_TYPE", "SvceAuthInfo must be { service, ident } without authInfo")
				}
				service, err := uri(parts[0], "service")
				if err != nil {
					return nil, nil, nil, "", err
				}
				ident, err := uri(parts[1], "ident")
				if err != nil {
					return nil, nil, nil, "", err
				}
				if tm := toolServiceR.FindStringSubmatch(service); tm != nil {
					glob, err := url.PathUnescape(tm[2])
					if err != nil || !toolEncR.MatchString(tm[2]) || toolEscape(glob) != tm[2] {
						return nil, nil, nil, "", refuse("BAD_VALUE_TYPE", "tool glob of %s not in its one percent-encoded spelling", service)
					}
					service = tm[1]
					scopedCount++
					if !validGlob(glob) {
						return nil, nil, nil, "", refuse("BAD_NAME", "tool glob %q", glob)
					}
					for _, t := range tools {
						if t == glob {
							return nil, nil, nil, "", refuse("MALFORMED", "tool glob %q twice", glob)
						}
					}
					tools = append(tools, glob)
				}
				if service != "spiffe://"+td {
					return nil, nil, nil, "", refuse("FOREIGN_TRUST_DOMAIN", "service %s is not spiffe://%s", service, td)
				}
				if i > 0 && ident != actingFor {
					return nil, nil, nil, "", refuse("BAD_VALUE_TYPE", "accessIdentity values for two delegators")
				}
				m := principalR.FindStringSubmatch(ident)
				if m == nil || m[3] == "." || m[3] == ".." {
					return nil, nil, nil, "", refuse("BAD_PRINCIPAL", "ident %s is not a principal URI", ident)
				}
				if m[1] != td {
					return nil, nil, nil, "", refuse("FOREIGN_TRUST_DOMAIN", "delegator %s of another trust domain", ident)
				}
				if ident == holder {
					return nil, nil, nil, "", refuse("BAD_PRINCIPAL", "acting for itself")
				}
				actingFor = ident
			}
			if len(a.Values) > 1 && scopedCount != len(a.Values) {
				return nil, nil, nil, "", refuse("BAD_VALUE_TYPE", "several accessIdentity values, not all scoped to a tool")
			}
		case a.Type.Equal(oidGroup):
			if len(a.Values) != 1 || a.Values[0].Tag != asn1.TagSequence {
				return nil, nil, nil, "", refuse("BAD_VALUE_TYPE", "teams must be one IetfAttrSyntax")
			}
			parts, err := elements(a.Values[0].Bytes)
			if err != nil {
				return nil, nil, nil, "", err
			}
			auth, parts, err := authority(parts, "policyAuthority")
			if err != nil {
				return nil, nil, nil, "", err
			}
			authorities = append(authorities, auth)
			if len(parts) != 1 || parts[0].Tag != asn1.TagSequence {
				return nil, nil, nil, "", refuse("BAD_VALUE_TYPE", "IetfAttrSyntax values missing")
			}
			vals, err := elements(parts[0].Bytes)
			if err != nil {
				return nil, nil, nil, "", err
			}
			for _, v := range vals {
				if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagUTF8String {
					return nil, nil, nil, "", refuse("BAD_VALUE_TYPE", "a team is not a UTF8String")
				}
				if !nameR.MatchString(string(v.Bytes)) {
					return nil, nil, nil, "", refuse("BAD_NAME", "team %q", v.Bytes)
				}
				teams = append(teams, string(v.Bytes))
			}
		case a.Type.Equal(oidRole):
			for _, v := range a.Values {
				parts, err := elements(v.Bytes)
				if err != nil {
					return nil, nil, nil, "", err
				}
				auth, parts, err := authority(parts, "roleAuthority")
				if err != nil {
					return nil, nil, nil, "", err
				}
				authorities = append(authorities, auth)
				if len(parts) != 1 || parts[0].Class != asn1.ClassContextSpecific || parts[0].Tag != 1 {
					return nil, nil, nil, "", refuse("BAD_VALUE_TYPE", "RoleSyntax.roleName missing")
				}
				names, err := elements(parts[0].Bytes)
				if err != nil || len(names) != 1 {
					return nil, nil, nil, "", refuse("BAD_VALUE_TYPE", "roleName must be one GeneralName")
				}
				u, err := uri(names[0], "roleName")
				if err != nil {
					return nil, nil, nil, "", err
				}
				m := roleR.FindStringSubmatch(u)
				if m == nil {
					return nil, nil, nil, "", refuse("BAD_NAME", "role %s", u)
				}
				if m[1] != td {
					return nil, nil, nil, "", refuse("FOREIGN_TRUST_DOMAIN", "role %s", u)
				}
				roles = append(roles, m[2])
			}
		}
	}
	for _, a := range authorities {
		if (actingFor == "") != (a == nil) || (a != nil && *a != actingFor) {
			return nil, nil, nil, "", refuse("BAD_VALUE_TYPE", "teams and roles are qualified by the delegator exactly in a delegated certificate")
		}
	}
	sort.Strings(teams)
	sort.Strings(roles)
	sort.Strings(tools)
	return teams, roles, tools, actingFor, nil
}

func examine(file string) result {
	r := result{File: file, Teams: []string{}, Roles: []string{}}
	fail := func(err error) result {
		r.OK = false
		if rf, ok := err.(refusal); ok {
			r.Code, r.Message = rf.code, rf.msg
		} else {
			r.Code, r.Message = "PARSE_ERROR", err.Error()
		}
		return r
	}
	der, err := os.ReadFile(file)
	if err != nil {
		return fail(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fail(err)
	}
	if len(cert.URIs) != 1 {
		return fail(refuse("URI_SAN_COUNT", "%d URI SANs", len(cert.URIs)))
	}
	holder := cert.URIs[0].String()
	m := principalR.FindStringSubmatch(holder)
	if m == nil {
		return fail(refuse("BAD_PRINCIPAL", "%s", holder))
	}
	r.Principal = holder
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(oidSDA) {
			continue
		}
		teams, roles, tools, actingFor, err := readSDA(ext.Value, m[1], holder)
		if err != nil {
			return fail(err)
		}
		if actingFor != "" {
			r.ActingFor = &delegator{Principal: actingFor, Teams: append([]string{}, teams...), Roles: append([]string{}, roles...), Tools: tools}
		} else {
			r.Teams, r.Roles = append([]string{}, teams...), append([]string{}, roles...)
		}
	}
	sum := sha256.Sum256(der)
	r.OK, r.Serial, r.Fingerprint = true, hex.EncodeToString(cert.SerialNumber.Bytes()), hex.EncodeToString(sum[:])
	return r
}

func main() {
	enc := json.NewEncoder(os.Stdout)
	for _, f := range os.Args[1:] {
		_ = enc.Encode(examine(f))
	}
}
