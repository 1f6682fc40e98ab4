"""HPKE interoperability check with pyhpke (an independent RFC 9180 implementation).

  seal PUBLIC_HEX INFO AAD   reads plaintext (hex) on stdin, prints {"enc": hex, "ct": hex}
  open PRIVATE_HEX INFO AAD  reads {"enc": hex, "ct": hex} on stdin, prints the plaintext (hex)

Suite: DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, base mode.
"""
import json
import sys

from cryptography.hazmat.primitives.asymmetric import ec
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey

SUITE = CipherSuite.new(KEMId.DHKEM_P256_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)


def main() -> None:
    mode, key_hex, info, aad = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4].encode()
    if mode == "seal":
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(key_hex))
        enc, sender = SUITE.create_sender_context(KEMKey.from_pyca_cryptography_key(public), info)
        ct = sender.seal(bytes.fromhex(sys.stdin.read().strip()), aad)
        print(json.dumps({"enc": enc.hex(), "ct": ct.hex()}))
    else:
        private = ec.derive_private_key(int(key_hex, 16), ec.SECP256R1())
        sealed = json.load(sys.stdin)
        recipient = SUITE.create_recipient_context(
            bytes.fromhex(sealed["enc"]), KEMKey.from_pyca_cryptography_key(private), info
        )
        print(recipient.open(bytes.fromhex(sealed["ct"]), aad).hex())


if __name__ == "__main__":
    main()
