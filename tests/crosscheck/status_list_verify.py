"""An independent Token Status List verifier, written from draft-ietf-oauth-status-list
(the CWT form) with cbor2, pyca/cryptography and zlib, for Brevet's tests.

  status_list_verify.py selftest
      decodes the draft's own examples (the 1-bit and 2-bit lists, and the CWT example's
      header and claims) and prints "ok".

  status_list_verify.py verify < request.json
      request: {"iaca": PEM, "now": unix seconds, "tokens": {uri: hex},
                "entries": [{"uri": ..., "idx": n}]}
      checks every token (untagged COSE_Sign1, ES256, typ, x5chain signer issued and signed by
      the IACA and valid at `now`, signature, sub == uri, iat <= now < exp, ttl > 0) and prints
      {"statuses": [status of each entry], "tokens": {uri: {"iat", "exp", "ttl", "bits",
      "size", "signer"}}}.
"""

import json
import sys
import zlib

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

TYP = 16
X5CHAIN = 33
CLAIM_SUB, CLAIM_EXP, CLAIM_IAT, CLAIM_TTL, CLAIM_STATUS_LIST = 2, 4, 6, 65534, 65533
CWT_TYPE = "application/statuslist+cwt"


class Refused(Exception):
    pass


def statuses(status_list):
    """Every status in a CBOR StatusList map: `bits` per entry, least significant bits first."""
    bits = status_list.get("bits")
    if bits not in (1, 2, 4, 8):
        raise Refused(f"bits is {bits!r}")
    lst = status_list.get("lst")
    if not isinstance(lst, bytes):
        raise Refused("lst is not a byte string")
    raw = zlib.decompress(lst)
    mask = (1 << bits) - 1
    out = []
    for byte in raw:
        for shift in range(0, 8, bits):
            out.append((byte >> shift) & mask)
    return out


def read_sign1(token, tagged_ok):
    item = cbor2.loads(token)
    if isinstance(item, cbor2.CBORTag):
        if not tagged_ok:
            raise Refused(f"the token is tagged ({item.tag}); the draft forbids it")
        item = item.value
    if not (isinstance(item, (list, tuple)) and len(item) == 4):
        raise Refused("not a COSE_Sign1 array")
    protected_bytes, unprotected, payload, signature = item
    protected = cbor2.loads(protected_bytes) if protected_bytes else {}
    return protected_bytes, protected, unprotected, payload, signature


def check_claims(protected, claims, uri):
    if protected.get(1) != -7:
        raise Refused(f"alg is {protected.get(1)!r}, not ES256 (-7)")
    if protected.get(TYP) != CWT_TYPE:
        raise Refused(f"typ is {protected.get(TYP)!r}")
    if claims.get(CLAIM_SUB) != uri:
        raise Refused(f"sub {claims.get(CLAIM_SUB)!r} is not {uri!r}")
    for key in (CLAIM_IAT, CLAIM_EXP, CLAIM_TTL):
        if not isinstance(claims.get(key), int):
            raise Refused(f"claim {key} is missing or not an integer")
    if claims[CLAIM_TTL] <= 0:
        raise Refused("ttl must be positive")
    if not isinstance(claims.get(CLAIM_STATUS_LIST), dict):
        raise Refused("no status_list claim")


def verify_token(token, uri, iaca, now):
    protected_bytes, protected, unprotected, payload, signature = read_sign1(token, False)
    chain = unprotected.get(X5CHAIN) or protected.get(X5CHAIN)
    leaf = chain[0] if isinstance(chain, list) else chain
    if not isinstance(leaf, bytes):
        raise Refused("no x5chain certificate")
    signer = x509.load_der_x509_certificate(leaf)
    if signer.issuer != iaca.subject:
        raise Refused("the signer certificate was not issued by the IACA")
    iaca.public_key().verify(
        signer.signature, signer.tbs_certificate_bytes, ec.ECDSA(signer.signature_hash_algorithm)
    )
    if not signer.not_valid_before_utc.timestamp() <= now <= signer.not_valid_after_utc.timestamp():
        raise Refused("the signer certificate is not valid now")
    # COSE Sig_structure (RFC 9052 §4.4), external AAD empty.
    to_be_signed = cbor2.dumps(["Signature1", protected_bytes, b"", payload])
    if len(signature) != 64:
        raise Refused("an ES256 signature is 64 bytes")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    signer.public_key().verify(der, to_be_signed, ec.ECDSA(hashes.SHA256()))
    claims = cbor2.loads(payload)
    check_claims(protected, claims, uri)
    if not claims[CLAIM_IAT] <= now < claims[CLAIM_EXP]:
        raise Refused("the token is not valid now")
    return claims, signer


def selftest():
    one = cbor2.loads(bytes.fromhex("a2646269747301636c73744a78dadbb918000217015d"))
    assert zlib.decompress(one["lst"]) == bytes([0xB9, 0xA3]), "1-bit example bytes"
    assert statuses(one)[:16] == [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1], "1-bit example"
    two = cbor2.loads(bytes.fromhex("a2646269747302636c73744b78da3be9f2130003df0207"))
    assert zlib.decompress(two["lst"]) == bytes([0xC9, 0x44, 0xF9]), "2-bit example bytes"
    assert statuses(two)[:12] == [1, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3], "2-bit example"
    example = bytes.fromhex(
        "d2845820a2012610781a6170706c69636174696f6e2f7374617475736c6973742b63"
        "7774a1044231325850a502782168747470733a2f2f6578616d706c652e636f6d2f73"
        "74617475736c697374732f31061a648c5bea041a8898dfea19fffe19a8c019fffda2"
        "646269747301636c73744a78dadbb918000217015d584093fa4d01032b18c35e2fe1"
        "101b77fd6cc9440022caa4694450c4e4e9feab4e99d1fa6d9772ce2bf3a12e0323de"
        "d7c982c5e101a5e67f0cbc1e2b6f57ce99c279"
    )
    # The example predates the rule against tags: the envelope check refuses it, the rest reads.
    try:
        read_sign1(example, False)
        raise AssertionError("a tagged token was accepted")
    except Refused:
        pass
    _, protected, unprotected, payload, _ = read_sign1(example, True)
    claims = cbor2.loads(payload)
    check_claims(protected, claims, "https://example.com/statuslists/1")
    assert unprotected == {4: b"12"}, "example kid"
    assert (claims[CLAIM_IAT], claims[CLAIM_EXP], claims[CLAIM_TTL]) == (1686920170, 2291720170, 43200)
    assert statuses(claims[CLAIM_STATUS_LIST])[:16] == [1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]
    try:
        check_claims(protected, claims, "https://example.com/statuslists/2")
        raise AssertionError("a token for another uri was accepted")
    except Refused:
        pass
    print("ok")


def verify():
    request = json.load(sys.stdin)
    iaca = x509.load_pem_x509_certificate(request["iaca"].encode())
    now = request["now"]
    lists, tokens = {}, {}
    for uri, token_hex in request["tokens"].items():
        try:
            claims, signer = verify_token(bytes.fromhex(token_hex), uri, iaca, now)
        except Exception as error:  # every refusal reaches the Rust test with its reason
            print(json.dumps({"refused": uri, "reason": f"{type(error).__name__}: {error}"}))
            return
        lists[uri] = statuses(claims[CLAIM_STATUS_LIST])
        tokens[uri] = {
            "iat": claims[CLAIM_IAT],
            "exp": claims[CLAIM_EXP],
            "ttl": claims[CLAIM_TTL],
            "bits": claims[CLAIM_STATUS_LIST]["bits"],
            "size": len(lists[uri]),
            "signer": signer.subject.rfc4514_string(),
        }
    out = []
    for entry in request["entries"]:
        values = lists[entry["uri"]]
        out.append(values[entry["idx"]] if entry["idx"] < len(values) else None)
    print(json.dumps({"statuses": out, "tokens": tokens}))


if __name__ == "__main__":
    {"selftest": selftest, "verify": verify}[sys.argv[1]]()
