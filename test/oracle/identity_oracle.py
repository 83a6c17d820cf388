#!/usr/bin/env python3
"""Independent test oracle for identity profile v1, v1.1 and v1.2 (/work/shared/design/identity.md;
v1.1, delegation, and v1.2, a delegation's tool globs: docs/identity.md of mcp-mtls).

The TypeScript test suite runs this script against the certificates the CA issues and
checks that both readers agree. It re-implements the profile's reader rules (the leaf
checks of rule 1, rules 3 and 4, optionally chain verification) from the text of the
profile alone: Python standard library plus `cryptography` for the certificate envelope,
and its own small strict DER parser for the subjectDirectoryAttributes (2.5.29.9) value,
which `cryptography` hands over as raw bytes. No code, schema or library is shared with
the TypeScript implementation, so a bug in one is unlikely to be repeated in the other.

Usage: identity_oracle.py CERT [CERT ...] [--trust-domain TD ...]
                          [--root ROOT.pem --intermediate INTER.pem] | --selftest
One JSON object per CERT on stdout; exit 0 if all ok, 1 otherwise, 2 on usage errors.
"""
import argparse
import hashlib
import json
import re
import sys
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

OID_SDA = "2.5.29.9"                 # subjectDirectoryAttributes extension
OID_TEAMS = "1.3.6.1.5.5.7.10.4"     # id-aca-group (RFC 5755 4.4.4)
OID_ROLES = "2.5.4.72"               # id-at-role (RFC 5755 4.4.5)
OID_ACCESS = "1.3.6.1.5.5.7.10.2"    # id-aca-accessIdentity (RFC 5755 4.4.2), profile v1.1
SEQ, SET, OID, UTF8, CTX0, CTX1, URI_TAG = 0x30, 0x31, 0x06, 0x0C, 0xA0, 0xA1, 0x86

# fullmatch everywhere: `$` would accept a trailing newline.
PRINCIPAL_RE = re.compile(r"spiffe://([a-z0-9._-]+)/(user|service)/([A-Za-z0-9._-]{1,128})")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ROLE_URI_RE = re.compile(r"spiffe://([a-z0-9._-]+)/role/(.*)", re.DOTALL)

GOLDEN_HEX = (
    "3071301f06082b06010505070a0431133011300f0c08706c6174666f726d0c03737265304e06035504"
    "4831473021a11f861d7370696666653a2f2f61636d652e746573742f726f6c652f61646d696e3022a1"
    "20861e7370696666653a2f2f61636d652e746573742f726f6c652f6f6e63616c6c"
)


class OracleError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def malformed(msg):
    return OracleError("IDENTITY_MALFORMED", msg)


def bad_type(msg):
    return OracleError("IDENTITY_BAD_VALUE_TYPE", msg)


# ---- strict DER -------------------------------------------------------------------

def read_tlv(buf, pos):
    """One DER TLV at buf[pos:] -> (tag, content, next_pos). Low tag numbers only (the
    profile needs nothing else); definite, minimally encoded lengths only."""
    if pos + 2 > len(buf):
        raise malformed(f"truncated TLV header at offset {pos}")
    tag, first = buf[pos], buf[pos + 1]
    if tag & 0x1F == 0x1F:
        raise malformed(f"high-tag-number form at offset {pos}")
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0:
            raise malformed("indefinite length is not DER")
        if n > 4 or pos + n > len(buf):
            raise malformed(f"bad length-of-length at offset {pos - 1}")
        raw = buf[pos:pos + n]
        length = int.from_bytes(raw, "big")
        if raw[0] == 0 or length < 0x80:  # DER: shortest form, no leading zero octet
            raise malformed(f"non-minimal length at offset {pos - 1}")
        pos += n
    if pos + length > len(buf):
        raise malformed(f"length {length} runs past the end at offset {pos}")
    return tag, buf[pos:pos + length], pos + length


def children(content, depth=0):
    """Split a constructed value's content into TLVs; every byte must be consumed."""
    if depth > 32:  # bound recursion: hostile nesting must fail, not crash the oracle
        raise malformed("nesting too deep")
    out, pos = [], 0
    while pos < len(content):
        tag, value, pos = read_tlv(content, pos)
        if tag & 0x20:  # validate nested constructed encodings too, even of unknown types
            children(value, depth + 1)
        out.append((tag, value))
    return out


def decode_oid(b):
    if not b or b[-1] & 0x80:
        raise malformed("empty or truncated OBJECT IDENTIFIER")
    arcs, cur, start = [], 0, True
    for byte in b:
        if start and byte == 0x80:
            raise malformed("non-minimal OBJECT IDENTIFIER arc")
        cur, start = (cur << 7) | (byte & 0x7F), not byte & 0x80
        if start:
            arcs.append(cur)
            cur = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(a) for a in [first, arcs[0] - 40 * first] + arcs[1:])


# ---- rule 4: subjectDirectoryAttributes ----------------------------------------------

def decode_attributes(ext_value):
    """SEQUENCE SIZE(1..MAX) OF SEQUENCE { OID, SET SIZE(1..MAX) OF ANY } -> [(oid, [values])]"""
    tag, content, end = read_tlv(ext_value, 0)
    if end != len(ext_value):
        raise malformed(f"{len(ext_value) - end} trailing byte(s)")
    attrs = children(content) if tag == SEQ else None
    if not attrs:
        raise malformed("extension is not a non-empty SEQUENCE of attributes")
    out = []
    for atag, acontent in attrs:
        parts = children(acontent) if atag == SEQ else []
        if len(parts) != 2 or parts[0][0] != OID or parts[1][0] != SET:
            raise malformed("attribute is not SEQUENCE { OID, SET }")
        values = children(parts[1][1])
        if not values:
            raise malformed("attribute has an empty value SET")
        if set_encodings(parts[1][1]) != sorted(set_encodings(parts[1][1])):
            raise malformed("attribute value SET is not in DER order")
        out.append((decode_oid(parts[0][1]), values))
    return out


def set_encodings(content):
    """Whole encodings of a SET's elements: DER sorts SET OF by them (X.690 11.6)."""
    out, pos = [], 0
    while pos < len(content):
        nxt = read_tlv(content, pos)[2]
        out.append(content[pos:nxt])
        pos = nxt
    return out


def decode_text(raw, codec, what):
    # Bytes that are not a valid encoding of the string type make the DER invalid; this is
    # malformed input, not a well-formed but unacceptable name.
    try:
        return raw.decode(codec)
    except UnicodeDecodeError:
        raise malformed(f"{what} is not valid {codec}") from None


def check_name(name, what):
    if not NAME_RE.fullmatch(name):
        raise OracleError("IDENTITY_BAD_NAME", f"invalid {what} name {name!r}")


def one_uri(names, what):
    """GeneralNames content (or a single GeneralName list) holding exactly one URI."""
    if len(names) != 1 or names[0][0] != URI_TAG:
        raise bad_type(f"{what} is not exactly one uniformResourceIdentifier")
    return decode_text(names[0][1], "ascii", f"{what} IA5String")


def split_authority(inner, what):
    """v1.1: an optional leading [0] IMPLICIT GeneralNames naming the delegator."""
    if inner and inner[0][0] == CTX0:
        return one_uri(children(inner[0][1]), what), inner[1:]
    return None, inner


def decode_teams(values, authorities):
    if len(values) != 1:
        raise bad_type(f"teams attribute has {len(values)} values, expected 1")
    tag, content = values[0]
    inner = children(content) if tag == SEQ else None
    auth, inner = split_authority(inner, "policyAuthority")
    authorities.append(auth)
    if not inner or len(inner) != 1 or inner[0][0] != SEQ:
        raise bad_type("team value is not IetfAttrSyntax SEQUENCE { values SEQUENCE }")
    teams = []
    for vtag, raw in children(inner[0][1]):
        if vtag != UTF8:
            raise bad_type(f"team value has tag 0x{vtag:02x}, expected UTF8String")
        name = decode_text(raw, "utf-8", "team UTF8String")
        check_name(name, "team")
        if name in teams:
            raise malformed(f"team {name!r} appears twice")
        teams.append(name)
    return sorted(teams)


def decode_roles(values, trust_domain, authorities):
    roles = []
    for tag, content in values:
        inner = children(content) if tag == SEQ else None
        auth, inner = split_authority(inner, "roleAuthority")
        authorities.append(auth)
        if not inner or len(inner) != 1 or inner[0][0] != CTX1:
            raise bad_type("role value is not RoleSyntax SEQUENCE { [1] roleName }")
        gn = children(inner[0][1])
        if len(gn) != 1 or gn[0][0] != URI_TAG:
            raise bad_type("roleName is not a uniformResourceIdentifier GeneralName")
        uri = decode_text(gn[0][1], "ascii", "roleName IA5String")
        m = ROLE_URI_RE.fullmatch(uri)
        if not m:
            raise OracleError("IDENTITY_BAD_NAME",
                              f"role URI {uri!r} is not spiffe://<td>/role/<name>")
        check_name(m.group(2), "role")
        if m.group(1) != trust_domain:
            raise OracleError("IDENTITY_FOREIGN_TRUST_DOMAIN",
                              f"role URI {uri!r} is outside trust domain {trust_domain!r}")
        if m.group(2) in roles:
            raise malformed(f"role {m.group(2)!r} appears twice")
        roles.append(m.group(2))
    return sorted(roles)


TOOL_SERVICE_RE = re.compile(r"(spiffe://[^/]+)/tool/([^/]*)")
TOOL_ENC_RE = re.compile(r"(?:[A-Za-z0-9._~*-]|%[0-9A-F]{2})+")
TOOL_SAFE = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~*-")


def tool_escape(glob):
    """v1.2: every octet outside A-Z a-z 0-9 . _ ~ * - as %XX, uppercase hex (the one spelling)."""
    return "".join(chr(b) if b in TOOL_SAFE else f"%{b:02X}" for b in glob.encode("utf-8"))


def valid_glob(g):
    """The policy's tool-glob syntax as far as a reader checks it: 1-128 printable ASCII,
    braces balanced, brackets closed, no trailing backslash."""
    if not 1 <= len(g) <= 128 or any(not 0x21 <= ord(c) <= 0x7E for c in g):
        return False
    depth, i = 0, 0
    while i < len(g):
        c = g[i]
        if c == "\\":
            i += 1
            if i >= len(g):
                return False
        elif c == "[":
            j = g.find("]", i + 1)
            if j < 0:
                return False
            i = j
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                return False
        i += 1
    return depth == 0


def decode_access_identity(values, trust_domain, holder):
    """v1.1: one SvceAuthInfo { service URI = spiffe://<td>, ident URI = a principal of td }, no authInfo.
    v1.2: one SvceAuthInfo per tool glob, service = spiffe://<td>/tool/<glob percent-encoded>, one ident.
    Returns (delegator, tools or None)."""
    idents, tools, unscoped = [], [], 0
    for tag, content in values:
        parts = children(content) if tag == SEQ else None
        if parts is None or len(parts) != 2:
            raise bad_type("accessIdentity is not SvceAuthInfo { service, ident } without authInfo")
        service = one_uri(parts[:1], "SvceAuthInfo.service")
        ident = one_uri(parts[1:], "SvceAuthInfo.ident")
        m = TOOL_SERVICE_RE.fullmatch(service)
        if m:
            enc = m.group(2)
            if not TOOL_ENC_RE.fullmatch(enc):
                raise bad_type(f"tool glob of {service!r} is not percent-encoded")
            try:
                glob = urllib.parse.unquote_to_bytes(enc).decode("utf-8")
            except UnicodeDecodeError:
                raise bad_type(f"tool glob of {service!r} is not UTF-8")
            if tool_escape(glob) != enc:
                raise bad_type(f"tool glob of {service!r} is not in its one spelling")
            service = m.group(1)
            if service == f"spiffe://{trust_domain}" and not valid_glob(glob):
                raise OracleError("IDENTITY_BAD_NAME", f"invalid tool glob {glob!r}")
            if glob in tools:
                raise malformed(f"tool glob {glob!r} appears twice")
            tools.append(glob)
        else:
            unscoped += 1
        if service != f"spiffe://{trust_domain}":
            raise OracleError("IDENTITY_FOREIGN_TRUST_DOMAIN", f"service {service!r} is not this trust domain")
        idents.append(ident)
    if len(values) > 1 and unscoped:
        raise bad_type(f"accessIdentity has {len(values)} values, not all scoped to a tool")
    if len(set(idents)) != 1:
        raise bad_type("accessIdentity values name more than one delegator")
    ident = idents[0]
    m = PRINCIPAL_RE.fullmatch(ident)
    if not m or m.group(3) in (".", ".."):
        raise OracleError("IDENTITY_BAD_PRINCIPAL", f"ident {ident!r} is not a principal URI")
    if m.group(1) != trust_domain:
        raise OracleError("IDENTITY_FOREIGN_TRUST_DOMAIN", f"delegator {ident!r} is of another trust domain")
    if ident == holder:
        raise OracleError("IDENTITY_BAD_PRINCIPAL", "a certificate cannot act for its own holder")
    return ident, (sorted(tools) if tools else None)


def decode_sda(ext_value, trust_domain, holder=None):
    """Extension value bytes -> (teams, roles, delegator or None); raises OracleError."""
    attrs = decode_attributes(ext_value)
    seen = set()
    for oid, _ in attrs:
        if oid in (OID_TEAMS, OID_ROLES, OID_ACCESS) and oid in seen:
            raise OracleError("IDENTITY_DUPLICATE_ATTRIBUTE", f"attribute {oid} appears twice")
        seen.add(oid)
    teams, roles, authorities, delegator, tools = [], [], [], None, None
    for oid, values in attrs:  # unknown attribute types are ignored
        if oid == OID_TEAMS:
            teams = decode_teams(values, authorities)
        elif oid == OID_ROLES:
            roles = decode_roles(values, trust_domain, authorities)
        elif oid == OID_ACCESS:
            delegator, tools = decode_access_identity(values, trust_domain, holder)
    # v1.1: authority-qualified values exist only in a delegated certificate, and there every
    # value is qualified by the delegator (a v1 reader refuses them: they are not the holder's)
    if any(a is not None and a != delegator for a in authorities) or (delegator and None in authorities):
        raise bad_type("teams/roles must be qualified by the delegator exactly in a delegated certificate")
    return teams, roles, delegator, tools


# ---- certificate-level rules ----------------------------------------------------------

def load_certs(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except (OSError, ValueError) as e:
        raise OracleError("PARSE_ERROR", f"not a certificate: {e}") from None
    return certs


def ext_or_none(cert, oid):
    try:
        return cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None


def check_leaf(cert):
    try:
        cert.extensions  # duplicate or unparsable extensions make the certificate invalid
    except Exception as e:  # x509.DuplicateExtension is not a ValueError
        raise OracleError("CERT_INVALID", f"bad extensions: {e}") from None
    bc = ext_or_none(cert, x509.oid.ExtensionOID.BASIC_CONSTRAINTS)
    if bc is not None and bc.value.ca:
        raise OracleError("CERT_INVALID", "leaf is a CA (basicConstraints cA TRUE)")
    eku = ext_or_none(cert, x509.oid.ExtensionOID.EXTENDED_KEY_USAGE)
    if eku is None or ExtendedKeyUsageOID.CLIENT_AUTH not in eku.value:
        raise OracleError("CERT_INVALID", "leaf lacks extKeyUsage clientAuth")
    if cert.serial_number <= 0:
        raise OracleError("CERT_INVALID", "serial number is not positive")


def check_principal(cert, trust_domains):
    san = ext_or_none(cert, x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    uris = san.value.get_values_for_type(x509.UniformResourceIdentifier) if san else []
    if len(uris) != 1:
        raise OracleError("IDENTITY_URI_SAN_COUNT",
                          f"expected exactly one URI SAN, found {len(uris)}")
    m = PRINCIPAL_RE.fullmatch(uris[0])
    if not m or m.group(3) in (".", ".."):
        raise OracleError("IDENTITY_BAD_PRINCIPAL",
                          f"{uris[0]!r} is not spiffe://<td>/<user|service>/<id>")
    if trust_domains and m.group(1) not in trust_domains:
        raise OracleError("IDENTITY_FOREIGN_TRUST_DOMAIN",
                          f"trust domain {m.group(1)!r} is not accepted")
    emails = san.value.get_values_for_type(x509.RFC822Name)
    return m.group(0), m.group(1), m.group(2), m.group(3), (emails[0] if emails else None)


def check_chain(leaf, extra, root, intermediate):
    from cryptography.x509.verification import PolicyBuilder, Store
    try:
        verifier = PolicyBuilder().store(Store([root])).build_client_verifier()
        verifier.verify(leaf, [intermediate] + extra)
        return "verified"
    except Exception as e:  # e.g. "unsupported name constraint" for URI constraints
        return f"failed: {e}"


def examine(path, trust_domains, root, intermediate):
    certs = load_certs(path)
    leaf = certs[0]
    check_leaf(leaf)
    principal, td, kind, ident, email = check_principal(leaf, trust_domains)
    ext = ext_or_none(leaf, x509.ObjectIdentifier(OID_SDA))
    ext_bytes = ext.value.value if ext is not None else None
    teams, roles, delegator, tools = decode_sda(ext_bytes, td, principal) if ext_bytes is not None else ([], [], None, None)
    n = leaf.serial_number
    out = {"file": path, "ok": True, "principal": principal, "trustDomain": td, "kind": kind,
           "id": ident, "teams": [] if delegator else teams, "roles": [] if delegator else roles}
    if delegator:
        out["actingFor"] = {"principal": delegator, "teams": teams, "roles": roles}
        if tools is not None:
            out["actingFor"]["tools"] = tools
    if email is not None:
        out["email"] = email
    out.update({
        "serial": n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big").hex(),
        "fingerprint": hashlib.sha256(leaf.public_bytes(Encoding.DER)).hexdigest(),
        "notAfter": leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S.") +
                    f"{leaf.not_valid_after_utc.microsecond // 1000:03d}Z",
        "extensionHex": ext_bytes.hex() if ext_bytes is not None else None,
        "chain": check_chain(leaf, certs[1:], root, intermediate) if root else "not checked",
    })
    return out


# ---- self test ----------------------------------------------------------------------

def selftest():
    def tlv(tag, *parts):  # short-form lengths are enough for these small cases
        body = b"".join(parts)
        assert len(body) < 0x80
        return bytes([tag, len(body)]) + body

    teams_oid, roles_oid = bytes.fromhex("06082b06010505070a04"), bytes.fromhex("0603550448")

    def teams_attr(*vals):
        return tlv(SEQ, teams_oid, tlv(SET, tlv(SEQ, tlv(SEQ, *vals))))

    def role(name, authority=b"", td="acme.test"):
        return tlv(SEQ, authority, tlv(CTX1, tlv(URI_TAG, f"spiffe://{td}/role/{name}".encode())))

    def roles_attr(*roles):
        return tlv(SEQ, roles_oid, tlv(SET, *roles))

    good_roles = roles_attr(role("admin"))
    unknown_attr = tlv(SEQ, bytes.fromhex("0603550403"), tlv(SET, tlv(UTF8, b"x")))  # 2.5.4.3 CN
    bad, dup, mal = "IDENTITY_BAD_VALUE_TYPE", "IDENTITY_DUPLICATE_ATTRIBUTE", "IDENTITY_MALFORMED"
    cases = [
        ("golden", bytes.fromhex(GOLDEN_HEX), (["platform", "sre"], ["admin", "oncall"], None, None)),
        ("unknown attribute ignored", tlv(SEQ, unknown_attr, good_roles), ([], ["admin"], None, None)),
        ("duplicate attribute", tlv(SEQ, good_roles, good_roles), dup),
        ("team as OCTET STRING", tlv(SEQ, teams_attr(tlv(0x04, b"sre"))), bad),
        ("role with roleAuthority",
         tlv(SEQ, roles_attr(role("a", tlv(CTX0, tlv(URI_TAG, b"x"))))), bad),
        ("roles SET not in DER order", tlv(SEQ, roles_attr(role("oncall"), role("admin"))), mal),
        ("role twice", tlv(SEQ, roles_attr(role("admin"), role("admin"))), mal),
        ("truncated length", bytes.fromhex(GOLDEN_HEX)[:-1], mal),
        ("trailing byte", bytes.fromhex(GOLDEN_HEX) + b"\x00", mal),
        ("non-minimal length", b"\x30\x81\x05\x30\x03\x06\x01\x00", mal),
        ("empty SEQUENCE", b"\x30\x00", mal),
        ("foreign role domain", tlv(SEQ, roles_attr(role("admin", td="evil.test"))),
         "IDENTITY_FOREIGN_TRUST_DOMAIN"),
        ("bad team name", tlv(SEQ, teams_attr(tlv(UTF8, b"-sre"))), "IDENTITY_BAD_NAME"),
        ("team not UTF-8", tlv(SEQ, teams_attr(tlv(UTF8, b"\xff"))), mal),
        ("team twice", tlv(SEQ, teams_attr(tlv(UTF8, b"sre"), tlv(UTF8, b"sre"))), mal),
    ]
    failures = 0
    for name, data, expected in cases:
        try:
            got = decode_sda(data, "acme.test")
        except OracleError as e:
            got = e.code
        ok = got == expected
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {got}")
    return 0 if failures == 0 else 1


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("certs", nargs="*", metavar="CERT")
    p.add_argument("--trust-domain", action="append", default=[])
    p.add_argument("--root")
    p.add_argument("--intermediate")
    p.add_argument("--selftest", action="store_true")
    args = p.parse_args(argv)
    if args.selftest:
        return selftest()
    if not args.certs or bool(args.root) != bool(args.intermediate):
        p.print_usage(sys.stderr)
        print("error: give CERT files, and --root with --intermediate together", file=sys.stderr)
        return 2
    root = inter = None
    if args.root:
        try:
            root, inter = load_certs(args.root)[0], load_certs(args.intermediate)[0]
        except OracleError as e:
            print(f"error: cannot load --root/--intermediate: {e}", file=sys.stderr)
            return 2
    all_ok = True
    for path in args.certs:
        try:
            result = examine(path, args.trust_domain, root, inter)
        except OracleError as e:
            result = {"file": path, "ok": False, "code": e.code, "message": str(e)}
        all_ok &= result["ok"]
        print(json.dumps(result))
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
