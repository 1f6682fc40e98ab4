"""Verify a DeviceResponse with pymdoccbor, an independent mdoc implementation.

Usage: pymdoccbor_verify.py IACA_PEM < device-response.hex
Prints one JSON object: whether pymdoccbor accepts the signature, the chain to the IACA and every
element digest, and the element values it read.
"""
import json
import sys

from cryptography import x509
from pymdoccbor.mdoc.verifier import MdocCbor


def main() -> int:
    with open(sys.argv[1], "rb") as f:
        iaca = x509.load_pem_x509_certificate(f.read())
    mdoc = MdocCbor()
    mdoc.loads(sys.stdin.read().strip())
    valid = mdoc.verify(trusted_root_certs=[iaca], verify_hashes=True)
    hashes = [doc.hash_verification for doc in mdoc.documents]
    claims = {
        ns: {k: (v.hex() if isinstance(v, bytes) else str(v)) for k, v in values.items()}
        for ns, values in mdoc.disclosure_map.items()
    }
    print(json.dumps({
        "valid": valid,
        "valid_documents": len(mdoc.documents),
        "invalid_documents": len(mdoc.documents_invalid),
        "hashes_valid": [h["valid"] for h in hashes if h],
        "claims": claims,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
