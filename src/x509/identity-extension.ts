/**
 * The identity extension of profile v1: subjectDirectoryAttributes (2.5.29.9) holding a
 * teams attribute (id-aca-group, IetfAttrSyntax of UTF8Strings) and a roles attribute
 * (id-at-role, one RoleSyntax per role with roleName [1] uniformResourceIdentifier).
 *
 * Profile v1.1 (delegation, docs/identity.md) adds RFC 5755's accessIdentity attribute
 * (SvceAuthInfo: service = the trust domain URI, ident = the delegator's principal URI) and
 * qualifies every delegated team and role by its authority (IetfAttrSyntax.policyAuthority,
 * RoleSyntax.roleAuthority = the delegator's principal URI): a v1 reader refuses those values
 * rather than read them as the holder's.
 *
 * Profile v1.2 (a grant's tool globs, docs/identity.md) scopes the access identity to tools: one
 * SvceAuthInfo value per glob (RFC 5755 allows several), whose service is the URI
 * `spiffe://<td>/tool/<glob, percent-encoded>`. A v1.1 reader refuses such an accessIdentity (more
 * than one value, or a service other than the trust domain's URI): it cannot read the delegation
 * without its restriction.
 *
 * Written by hand, not with @peculiar/asn1-x509-attr: that package wraps each IetfAttrSyntax
 * value in a SEQUENCE and writes RoleSyntax.roleName as an empty [1] (identity.md). The
 * encoder is pinned to the golden vector in test/identity/extension.test.ts.
 *
 * This module knows DER and the two attribute shapes; the naming rules (team and role
 * names, trust domains) are checked by src/identity.
 */
import { isMtlsError, MtlsError, type ErrorCode } from '../errors.js';
import {
  bytesOf,
  children,
  compareDer,
  contentOf,
  decodeOid,
  decodeUtf8,
  expectTag,
  oidDer,
  readWhole,
  seq,
  setOf,
  TAG,
  tlv,
  type Tlv,
  utf8Der,
} from './der.js';
import { extension, uriName } from './extensions.js';
import { OID } from './oids.js';

export interface IdentityAttributes {
  /** team names, in any order (written sorted by code point, deduplicated) */
  readonly teams: readonly string[];
  /** role URIs (spiffe://<td>/role/<name>) */
  readonly roleUris: readonly string[];
  /**
   * v1.1: RFC 5755 accessIdentity (SvceAuthInfo without authInfo): the service (trust domain URI)
   * and the principal the holder acts for. v1.2: `tools`, the tool globs the delegation is
   * limited to (one SvceAuthInfo per glob, service `<service>/tool/<glob percent-encoded>`);
   * absent: no limit. Read back sorted by code point.
   */
  readonly accessIdentity?: { readonly service: string; readonly ident: string; readonly tools?: readonly string[] };
  /**
   * v1.1: the authority every team and role is qualified by (policyAuthority / roleAuthority,
   * one URI): the delegator. Written when `accessIdentity` is; read back as found (the decoder
   * requires one authority for all values, equal to `accessIdentity.ident`).
   */
  readonly authority?: string;
}

/** Deduplicated and sorted by Unicode code point (not UTF-16 code unit), as the profile says. */
export function sortByCodePoint(values: readonly string[]): string[] {
  return [...new Set(values)].sort((a, b) => {
    const x = [...a];
    const y = [...b];
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const d = (x[i] as string).codePointAt(0)! - (y[i] as string).codePointAt(0)!;
      if (d !== 0) return d;
    }
    return x.length - y.length;
  });
}

/** The extension value (the OCTET STRING content), or undefined when there is nothing to say. */
export function encodeIdentityAttributes(attrs: IdentityAttributes): Buffer | undefined {
  const parts: Buffer[] = [];
  const ai = attrs.accessIdentity;
  if (ai) {
    const services = ai.tools ? sortByCodePoint(ai.tools).map((g) => toolServiceUri(ai.service, g)) : [ai.service];
    if (services.length === 0) throw new MtlsError('BAD_NAME', 'a delegation limited to tools names at least one tool glob', { hint: 'leave tools out for no limit' });
    parts.push(seq(oidDer(OID.accessIdentity), setOf(services.map((service) => seq(uriName(service), uriName(ai.ident))))));
  }
  // a delegated certificate qualifies every team and role by the delegator ([0] IMPLICIT GeneralNames)
  const authority = ai ? tlv(0xa0, uriName(ai.ident)) : undefined;
  if (attrs.teams.length > 0) {
    const values = seq(...sortByCodePoint(attrs.teams).map(utf8Der));
    parts.push(seq(oidDer(OID.group), setOf([authority ? seq(authority, values) : seq(values)])));
  }
  if (attrs.roleUris.length > 0) {
    const roles = [...new Set(attrs.roleUris)].map((uri) => (authority ? seq(authority, tlv(0xa1, uriName(uri))) : seq(tlv(0xa1, uriName(uri)))));
    parts.push(seq(oidDer(OID.role), setOf(roles)));
  }
  return parts.length > 0 ? seq(...parts) : undefined;
}

export function identityAttributesExtension(attrs: IdentityAttributes): Buffer | undefined {
  const value = encodeIdentityAttributes(attrs);
  return value && extension(OID.subjectDirectoryAttributes, false, value);
}

/** Profile v1.2: the characters a tool glob is written with unescaped in its service URI (RFC 3986 unreserved, and `*`). */
const TOOL_SAFE = /^[A-Za-z0-9._~*-]$/;

/** `<service>/tool/<glob>`, every octet of the glob outside {@link TOOL_SAFE} as %XX (uppercase hex): one spelling per glob. */
export function toolServiceUri(service: string, glob: string): string {
  let enc = '';
  for (const b of Buffer.from(glob, 'utf8')) {
    const c = String.fromCharCode(b);
    enc += b < 0x80 && TOOL_SAFE.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return `${service}/tool/${enc}`;
}

/** The service and glob of a v1.2 tool-scoped service URI, or undefined when it is not one; a non-canonical spelling throws. */
function parseToolService(uri: string): { service: string; glob: string } | undefined {
  const m = /^(spiffe:\/\/[^/]+)\/tool\/([^/]*)$/.exec(uri);
  if (!m) return undefined;
  const enc = m[2] as string;
  if (!/^(?:[A-Za-z0-9._~*-]|%[0-9A-F]{2})+$/.test(enc)) throw fail('IDENTITY_BAD_VALUE_TYPE', `the tool glob of accessIdentity service "${uri}" is not percent-encoded as profile v1.2 says`);
  const glob = Buffer.from(enc.replace(/%([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
  if (toolServiceUri(m[1] as string, glob) !== uri) throw fail('IDENTITY_BAD_VALUE_TYPE', `the tool glob of accessIdentity service "${uri}" is not in its one percent-encoded spelling (profile v1.2)`);
  return { service: m[1] as string, glob };
}

function fail(code: ErrorCode, message: string): MtlsError {
  return new MtlsError(code, message, {
    hint: 'the certificate was not issued by an mcp-mtls profile v1 CA, or was altered; reissue it',
  });
}

/**
 * Strict decoder (identity.md reader rule 4). Unknown attribute types are ignored; a
 * duplicate type, a value of the wrong type or malformed DER throws with its own code.
 */
export function decodeIdentityAttributes(value: Uint8Array): IdentityAttributes {
  try {
    return decodeStrict(value);
  } catch (e) {
    // DER faults at any depth (bad lengths, invalid UTF-8) are identity faults here
    if (isMtlsError(e, 'DER_MALFORMED')) throw fail('IDENTITY_MALFORMED', `subjectDirectoryAttributes is not valid DER: ${e.message}`);
    throw e;
  }
}

function decodeStrict(value: Uint8Array): IdentityAttributes {
  const attributes = children(value, readWhole(value, TAG.SEQUENCE));
  if (attributes.length === 0) throw fail('IDENTITY_MALFORMED', 'subjectDirectoryAttributes is empty');
  const seen = new Set<string>();
  let teams: string[] = [];
  let roleUris: string[] = [];
  let accessIdentity: { service: string; ident: string; tools?: string[] } | undefined;
  const authorities = new Set<string | undefined>();
  for (const attr of attributes) {
    const [typeTlv, valuesTlv, ...extra] = children(value, expectTag(attr, TAG.SEQUENCE, 'Attribute'));
    const type = decodeOid(contentOf(value, expectTag(typeTlv, TAG.OID, 'attribute type')));
    const values = children(value, expectTag(valuesTlv, TAG.SET, 'attribute values'));
    if (extra.length > 0 || values.length === 0) throw fail('IDENTITY_MALFORMED', 'an Attribute must be { type, values SET SIZE (1..MAX) }');
    for (let i = 1; i < values.length; i++) {
      if (compareDer(bytesOf(value, values[i - 1]!), bytesOf(value, values[i]!)) > 0) {
        throw fail('IDENTITY_MALFORMED', `the values of attribute ${type} are not in DER SET order`);
      }
    }
    if (type !== OID.group && type !== OID.role && type !== OID.accessIdentity) {
      for (const v of values) walkDer(value, v); // not interpreted, but it must still be DER
      continue;
    }
    if (seen.has(type)) throw fail('IDENTITY_DUPLICATE_ATTRIBUTE', `attribute ${type} appears more than once`);
    seen.add(type);
    if (type === OID.accessIdentity) {
      accessIdentity = decodeAccessIdentity(value, values);
    } else if (type === OID.group) {
      if (values.length !== 1) throw fail('IDENTITY_BAD_VALUE_TYPE', 'the teams attribute must have exactly one IetfAttrSyntax value');
      const t = decodeIetfAttrSyntax(value, values[0]!);
      teams = t.values;
      authorities.add(t.authority);
    } else {
      roleUris = values.map((v) => {
        const r = decodeRoleSyntax(value, v);
        authorities.add(r.authority);
        return r.uri;
      });
    }
  }
  // profile v1.1: qualified values only with an accessIdentity, and then all of them, by the delegator
  if (!accessIdentity && [...authorities].some((a) => a !== undefined)) {
    throw fail('IDENTITY_BAD_VALUE_TYPE', 'a policyAuthority or roleAuthority is present without an accessIdentity attribute (profile v1.1 qualifies only delegated teams and roles)');
  }
  if (accessIdentity && [...authorities].some((a) => a !== accessIdentity.ident)) {
    throw fail('IDENTITY_BAD_VALUE_TYPE', `a delegated certificate carries only teams and roles qualified by the delegator ${accessIdentity.ident} (policyAuthority / roleAuthority)`);
  }
  const authority = accessIdentity && authorities.size > 0 ? accessIdentity.ident : undefined;
  return { teams, roleUris, ...(accessIdentity ? { accessIdentity } : {}), ...(authority ? { authority } : {}) };
}

/** One GeneralName that must be a uniformResourceIdentifier of printable ASCII. */
function uriOf(buf: Uint8Array, t: Tlv | undefined, what: string): string {
  if (!t || t.tag !== 0x86) throw fail('IDENTITY_BAD_VALUE_TYPE', `${what} must be a uniformResourceIdentifier`);
  const uri = contentOf(buf, t);
  if (uri.some((b) => b < 0x21 || b > 0x7e)) throw fail('IDENTITY_BAD_VALUE_TYPE', `${what} is not printable ASCII`);
  return uri.toString('latin1');
}

/** [0] IMPLICIT GeneralNames holding exactly one URI (profile v1.1: the delegator). */
function decodeAuthority(buf: Uint8Array, t: Tlv, what: string): string {
  const names = children(buf, t);
  if (names.length !== 1) throw fail('IDENTITY_BAD_VALUE_TYPE', `${what} must name exactly one authority`);
  return uriOf(buf, names[0], what);
}

/**
 * The accessIdentity's values: one SvceAuthInfo (v1.1: the whole trust domain), or one per tool
 * glob (v1.2), all for the same delegator and trust domain, none of them unscoped.
 */
function decodeAccessIdentity(buf: Uint8Array, values: Tlv[]): { service: string; ident: string; tools?: string[] } {
  const infos = values.map((v) => decodeSvceAuthInfo(buf, v));
  const scoped = infos.map((i) => parseToolService(i.service));
  if (infos.length === 1 && !scoped[0]) return infos[0]!;
  if (scoped.some((s) => !s)) throw fail('IDENTITY_BAD_VALUE_TYPE', 'an accessIdentity with several values must scope each to a tool glob (profile v1.2: one delegator, service spiffe://<td>/tool/<glob>)');
  const first = infos[0]!;
  const service = scoped[0]!.service;
  if (infos.some((i, n) => i.ident !== first.ident || scoped[n]!.service !== service)) {
    throw fail('IDENTITY_BAD_VALUE_TYPE', 'the accessIdentity values name more than one delegator or trust domain (one delegation per certificate)');
  }
  const tools = scoped.map((s) => s!.glob);
  if (new Set(tools).size !== tools.length) throw fail('IDENTITY_MALFORMED', 'a tool glob appears twice in the accessIdentity');
  return { service, ident: first.ident, tools: sortByCodePoint(tools) };
}

/** RFC 5755 SvceAuthInfo { service GeneralName, ident GeneralName, authInfo OCTET STRING OPTIONAL }; v1.1: two URIs, no authInfo. */
function decodeSvceAuthInfo(buf: Uint8Array, v: Tlv): { service: string; ident: string } {
  if (v.tag !== TAG.SEQUENCE) throw fail('IDENTITY_BAD_VALUE_TYPE', 'the accessIdentity value is not a SvceAuthInfo SEQUENCE');
  const parts = children(buf, v);
  if (parts.length === 3) throw fail('IDENTITY_BAD_VALUE_TYPE', 'SvceAuthInfo must not carry authInfo (profile v1.1)');
  if (parts.length !== 2) throw fail('IDENTITY_BAD_VALUE_TYPE', 'SvceAuthInfo must be { service, ident }');
  return { service: uriOf(buf, parts[0], 'SvceAuthInfo.service'), ident: uriOf(buf, parts[1], 'SvceAuthInfo.ident') };
}

/** Checks that a value is DER all the way down (constructed values are walked). */
function walkDer(buf: Uint8Array, t: Tlv): void {
  if (t.tag & 0x20) for (const c of children(buf, t)) walkDer(buf, c);
}

function decodeIetfAttrSyntax(buf: Uint8Array, v: Tlv): { values: string[]; authority?: string } {
  if (v.tag !== TAG.SEQUENCE) throw fail('IDENTITY_BAD_VALUE_TYPE', 'a teams value is not an IetfAttrSyntax SEQUENCE');
  const parts = children(buf, v);
  const authority = parts.length === 2 && parts[0]!.tag === 0xa0 ? decodeAuthority(buf, parts.shift()!, 'policyAuthority') : undefined;
  if (parts.length !== 1 || parts[0]!.tag !== TAG.SEQUENCE) {
    throw fail('IDENTITY_BAD_VALUE_TYPE', 'IetfAttrSyntax must hold a values SEQUENCE, and a policyAuthority only in a delegated certificate (profile v1.1)');
  }
  const out: string[] = [];
  for (const item of children(buf, parts[0]!)) {
    if (item.tag !== TAG.UTF8_STRING) {
      throw fail('IDENTITY_BAD_VALUE_TYPE', `a team value has tag 0x${item.tag.toString(16)}, expected UTF8String`);
    }
    out.push(decodeUtf8(contentOf(buf, item)));
  }
  return authority === undefined ? { values: out } : { values: out, authority };
}

function decodeRoleSyntax(buf: Uint8Array, v: Tlv): { uri: string; authority?: string } {
  if (v.tag !== TAG.SEQUENCE) throw fail('IDENTITY_BAD_VALUE_TYPE', 'a role value is not a RoleSyntax SEQUENCE');
  const parts = children(buf, v);
  const authority = parts.length === 2 && parts[0]!.tag === 0xa0 ? decodeAuthority(buf, parts.shift()!, 'roleAuthority') : undefined;
  if (parts.length !== 1 || parts[0]!.tag !== 0xa1) {
    throw fail('IDENTITY_BAD_VALUE_TYPE', 'RoleSyntax must hold roleName [1], and a roleAuthority only in a delegated certificate (profile v1.1)');
  }
  const names = children(buf, parts[0]!);
  if (names.length !== 1) throw fail('IDENTITY_BAD_VALUE_TYPE', 'roleName must be a uniformResourceIdentifier');
  const uri = uriOf(buf, names[0], 'roleName');
  return authority === undefined ? { uri } : { uri, authority };
}
