"""A three-level CA hierarchy (root -> I1 -> I2 -> client), as an enterprise PKI may have, for
test/mtls/ca-hierarchy-revocation.test.ts. python `cryptography`, independent of mcp-mtls's own writers.

usage: ca_hierarchy.py CLIENT_CERT OUT_DIR
  CLIENT_CERT: an mcp-mtls client certificate whose extensions (identity, SAN, EKU, ...) the
  new client certificate copies; OUT_DIR receives root.crt, i1.crt, i2.crt, leaf.crt (leaf, I2,
  I1), leaf.key and CRLs: root-revokes-i1.crl, root.crl, i1.crl, i1-revokes-i2.crl, i2.crl.
"""
import datetime
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID

client = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read())
out = sys.argv[2]
now = datetime.datetime.now(datetime.timezone.utc)
name = lambda cn: x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
key = lambda: ec.generate_private_key(ec.SECP256R1())
pem = lambda o: o.public_bytes(serialization.Encoding.PEM)


def ca_cert(subject, k, issuer, ik, serial):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(k.public_key()).serial_number(serial)
         .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
         .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
         .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()), False))
    if ik is not k:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ik.public_key()), False)
    return b.sign(ik, hashes.SHA256())


def crl(issuer, k, serials, number):
    b = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
         .last_update(now - datetime.timedelta(minutes=5)).next_update(now + datetime.timedelta(days=1))
         .add_extension(x509.CRLNumber(number), False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(k.public_key()), False))
    for s in serials:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(s).revocation_date(now - datetime.timedelta(minutes=5)).build())
    return b.sign(k, hashes.SHA256())


rk, k1, k2, lk = key(), key(), key(), key()
root = ca_cert(name('Enterprise Root'), rk, name('Enterprise Root'), rk, 0x1000)
i1 = ca_cert(name('Enterprise Policy CA'), k1, root.subject, rk, 0x1111)
i2 = ca_cert(name('Enterprise Issuing CA'), k2, i1.subject, k1, 0x2222)
b = (x509.CertificateBuilder().subject_name(client.subject).issuer_name(i2.subject).public_key(lk.public_key()).serial_number(0x3333)
     .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1)))
for e in client.extensions:
    if e.oid in (ExtensionOID.AUTHORITY_KEY_IDENTIFIER, ExtensionOID.SUBJECT_KEY_IDENTIFIER, ExtensionOID.CRL_DISTRIBUTION_POINTS):
        continue
    b = b.add_extension(e.value, e.critical)
leaf = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(k2.public_key()), False).sign(k2, hashes.SHA256())

files = {
    'root.crt': pem(root), 'i1.crt': pem(i1), 'i2.crt': pem(i2), 'leaf.crt': pem(leaf) + pem(i2) + pem(i1),
    'leaf.key': lk.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    'root-revokes-i1.crl': pem(crl(root, rk, [0x1111], 2)), 'root.crl': pem(crl(root, rk, [], 1)),
    'i1.crl': pem(crl(i1, k1, [], 1)), 'i1-revokes-i2.crl': pem(crl(i1, k1, [0x2222], 2)), 'i2.crl': pem(crl(i2, k2, [], 1)),
}
for f, data in files.items():
    with open(os.path.join(out, f), 'wb') as fh:
        fh.write(data)
