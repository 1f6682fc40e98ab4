"""Reads a PEM PKCS#10 request on stdin and prints what pyca/cryptography makes of it, as JSON:
whether its self-signature verifies, its subject, email SANs, extended key usages and key."""
import json
import sys

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

csr = x509.load_pem_x509_csr(sys.stdin.read().encode())
key = csr.public_key()
out = {
    "valid": csr.is_signature_valid,
    "subject": csr.subject.rfc4514_string(),
    "emails": [],
    "eku": [],
    "key": "rsa-%d" % key.key_size if isinstance(key, rsa.RSAPublicKey) else "ec-" + key.curve.name,
}
for ext in csr.extensions:
    if isinstance(ext.value, x509.SubjectAlternativeName):
        out["emails"] = ext.value.get_values_for_type(x509.RFC822Name)
    if isinstance(ext.value, x509.ExtendedKeyUsage):
        out["eku"] = [oid.dotted_string for oid in ext.value]
print(json.dumps(out))
