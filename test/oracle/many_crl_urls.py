"""A copy of an mcp-mtls client certificate naming many CRL URLs, re-signed with its CA's
intermediate key (python `cryptography`), for test/security/tenant-revocation.test.ts: what a hostile
tenant's CA can issue.

usage: many_crl_urls.py CA_DIR CLIENT_CERT COUNT BASE_URL OUT_CERT
"""
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtensionOID

ca_dir, src, count, base, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
key = serialization.load_pem_private_key(open(f'{ca_dir}/private/intermediate.key', 'rb').read(), None)
c = x509.load_pem_x509_certificate(open(src, 'rb').read())
b = (x509.CertificateBuilder().subject_name(c.subject).issuer_name(c.issuer).public_key(c.public_key()).serial_number(c.serial_number + 1)
     .not_valid_before(c.not_valid_before_utc).not_valid_after(c.not_valid_after_utc))
for e in c.extensions:
    if e.oid != ExtensionOID.CRL_DISTRIBUTION_POINTS:
        b = b.add_extension(e.value, e.critical)
points = [x509.DistributionPoint([x509.UniformResourceIdentifier(f'{base}/{i}.crl')], None, None, None) for i in range(count)]
b = b.add_extension(x509.CRLDistributionPoints(points), False)
open(out, 'wb').write(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
