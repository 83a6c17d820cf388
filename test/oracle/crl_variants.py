"""CRLs that are not a CA's complete CRL, signed with an mcp-mtls CA's intermediate key, for
test/mtls/crl-scope.test.ts (python `cryptography`, independent of mcp-mtls's own CRL writer).

usage: crl_variants.py CA_DIR SERIAL_HEX OUT_DIR
  writes base.crl (#1000, revokes SERIAL), delta.crl (#1001, a delta CRL on #1000, empty),
  partition.crl (#1001, issuingDistributionPoint onlyContainsCACerts, empty), critical.crl
  (#1001, an unknown critical extension, empty), idp-plain.crl (#1001, an issuingDistributionPoint
  with only a name, which keeps the full scope, revokes SERIAL); all DER.
"""
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

ca_dir, serial, out = sys.argv[1], int(sys.argv[2], 16), sys.argv[3]
inter = x509.load_pem_x509_certificate(open(f'{ca_dir}/intermediate.crt', 'rb').read())
key = serialization.load_pem_private_key(open(f'{ca_dir}/private/intermediate.key', 'rb').read(), None)
now = datetime.datetime.now(datetime.timezone.utc)


def crl(number, serials, extra=()):
    b = (x509.CertificateRevocationListBuilder().issuer_name(inter.subject)
         .last_update(now - datetime.timedelta(minutes=5)).next_update(now + datetime.timedelta(days=1))
         .add_extension(x509.CRLNumber(number), False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False))
    for ext, critical in extra:
        b = b.add_extension(ext, critical)
    for s in serials:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(s).revocation_date(now - datetime.timedelta(minutes=5)).build())
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def idp(**scope):
    fields = dict(full_name=None, relative_name=None, only_contains_user_certs=False, only_contains_ca_certs=False,
                  only_some_reasons=None, indirect_crl=False, only_contains_attribute_certs=False)
    fields.update(scope)
    return x509.IssuingDistributionPoint(**fields)


variants = {
    'base': crl(1000, [serial]),
    'delta': crl(1001, [], [(x509.DeltaCRLIndicator(1000), True)]),
    'partition': crl(1001, [], [(idp(only_contains_ca_certs=True), True)]),
    'critical': crl(1001, [], [(x509.UnrecognizedExtension(x509.ObjectIdentifier('1.3.6.1.4.1.55555.1'), b'\x05\x00'), True)]),
    'idp-plain': crl(1001, [serial], [(idp(full_name=[x509.UniformResourceIdentifier('http://127.0.0.1/intermediate.crl')]), True)]),
}
for name, der in variants.items():
    with open(f'{out}/{name}.crl', 'wb') as f:
        f.write(der)
