"""A cross-certificate for another CA's intermediate: its name and public key, issued by a
different root (python `cryptography`), for test/security/tenant-revocation.test.ts: what a hostile
tenant can hand an operator as "its intermediate".

usage: cross_certify.py VICTIM_INTERMEDIATE_CERT ROGUE_CA_DIR OUT_CERT
"""
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

victim = x509.load_pem_x509_certificate(open(sys.argv[1], 'rb').read())
root = x509.load_pem_x509_certificate(open(f'{sys.argv[2]}/root.crt', 'rb').read())
key = serialization.load_pem_private_key(open(f'{sys.argv[2]}/private/root.key', 'rb').read(), None)
now = datetime.datetime.now(datetime.timezone.utc)
b = (x509.CertificateBuilder().subject_name(victim.subject).issuer_name(root.subject).public_key(victim.public_key()).serial_number(0x7777)
     .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=30))
     .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
     .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), True)
     .add_extension(x509.SubjectKeyIdentifier.from_public_key(victim.public_key()), False)
     .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), False))
open(sys.argv[3], 'wb').write(b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
