/**
 * The identity extension of profile v1: subjectDirectoryAttributes (2.5.29.9) holding a
 * teams attribute (id-aca-group, IetfAttrSyntax of UTF8Strings) and a roles attribute
 * (id-at-role, one RoleSyntax per role with roleName [1] uniformResourceIdentifier).
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
  if (attrs.teams.length > 0) {
    const ietfAttrSyntax = seq(seq(...sortByCodePoint(attrs.teams).map(utf8Der)));
    parts.push(seq(oidDer(OID.group), setOf([ietfAttrSyntax])));
  }
  if (attrs.roleUris.length > 0) {
    const roles = [...new Set(attrs.roleUris)].map((uri) => seq(tlv(0xa1, uriName(uri))));
    parts.push(seq(oidDer(OID.role), setOf(roles)));
  }
  return parts.length > 0 ? seq(...parts) : undefined;
}

export function identityAttributesExtension(attrs: IdentityAttributes): Buffer | undefined {
  const value = encodeIdentityAttributes(attrs);
  return value && extension(OID.subjectDirectoryAttributes, false, value);
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
    if (type !== OID.group && type !== OID.role) {
      for (const v of values) walkDer(value, v); // not interpreted, but it must still be DER
      continue;
    }
    if (seen.has(type)) throw fail('IDENTITY_DUPLICATE_ATTRIBUTE', `attribute ${type} appears more than once`);
    seen.add(type);
    if (type === OID.group) {
      if (values.length !== 1) throw fail('IDENTITY_BAD_VALUE_TYPE', 'the teams attribute must have exactly one IetfAttrSyntax value');
      teams = decodeIetfAttrSyntax(value, values[0]!);
    } else {
      roleUris = values.map((v) => decodeRoleSyntax(value, v));
    }
  }
  return { teams, roleUris };
}

/** Checks that a value is DER all the way down (constructed values are walked). */
function walkDer(buf: Uint8Array, t: Tlv): void {
  if (t.tag & 0x20) for (const c of children(buf, t)) walkDer(buf, c);
}

function decodeIetfAttrSyntax(buf: Uint8Array, v: Tlv): string[] {
  if (v.tag !== TAG.SEQUENCE) throw fail('IDENTITY_BAD_VALUE_TYPE', 'a teams value is not an IetfAttrSyntax SEQUENCE');
  const parts = children(buf, v);
  if (parts.length !== 1 || parts[0]!.tag !== TAG.SEQUENCE) {
    throw fail('IDENTITY_BAD_VALUE_TYPE', 'IetfAttrSyntax must hold only a values SEQUENCE (no policyAuthority in profile v1)');
  }
  const out: string[] = [];
  for (const item of children(buf, parts[0]!)) {
    if (item.tag !== TAG.UTF8_STRING) {
      throw fail('IDENTITY_BAD_VALUE_TYPE', `a team value has tag 0x${item.tag.toString(16)}, expected UTF8String`);
    }
    out.push(decodeUtf8(contentOf(buf, item)));
  }
  return out;
}

function decodeRoleSyntax(buf: Uint8Array, v: Tlv): string {
  if (v.tag !== TAG.SEQUENCE) throw fail('IDENTITY_BAD_VALUE_TYPE', 'a role value is not a RoleSyntax SEQUENCE');
  const parts = children(buf, v);
  if (parts.length !== 1 || parts[0]!.tag !== 0xa1) {
    throw fail('IDENTITY_BAD_VALUE_TYPE', 'RoleSyntax must hold only roleName [1] (no roleAuthority in profile v1)');
  }
  const names = children(buf, parts[0]!);
  if (names.length !== 1 || names[0]!.tag !== 0x86) {
    throw fail('IDENTITY_BAD_VALUE_TYPE', 'roleName must be a uniformResourceIdentifier');
  }
  const uri = contentOf(buf, names[0]!);
  if (uri.some((b) => b < 0x21 || b > 0x7e)) throw fail('IDENTITY_BAD_VALUE_TYPE', 'roleName is not printable ASCII');
  return uri.toString('latin1');
}
