"""Android's key attestation and Identity Credential formats, read and written in Python from
their public definitions (the KeyDescription schema on source.android.com, the Identity
Credential HAL and identity-credential's Util), with pyasn1, cbor2 and pyca/cryptography: an
implementation independent of Brevet's, for the cross-checks in tests/it/crosscheck.rs.

Commands (inputs and outputs are JSON or hex on stdin/stdout):
  key-descriptions          stdin: ["<cert DER hex>", ...]; prints each certificate's KeyDescription
                            (or null) as JSON
  read-auth-key             stdin: cert DER hex; prints what Android reads from an auth-key
                            certificate: the ProofOfBinding digest, names, serial, key
  make-auth-key KEY POP     KEY: the CredentialKey's private scalar (hex), POP: SHA-256 of the
                            ProofOfProvisioning (hex); prints {"der", "auth_key"} (hex)
  verify-proof PUBKEY       stdin: COSE_Sign1 hex; checks the ES256 signature with PUBKEY (SEC1
                            hex) and prints the payload's structure as JSON
  make-provisioning KEY     stdin: {"docType", "nameSpaces": {ns: [[name, value CBOR hex], ...]}};
                            prints a ProofOfProvisioning COSE_Sign1 (hex) signed with KEY
  credential-payload        stdin: hex; prints {"docType", "nameSpaces": {ns: {name: value hex}}}
  forge-chains CHALLENGE    prints {"root": DER hex, "chains": {name: [DER hex, ...]}}: a valid
                            attestation chain for CHALLENGE (hex) and variants that each break one
                            rule of path validation (see forge_chains)
"""
import datetime
import hashlib
import json
import sys

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.x509.oid import NameOID
from pyasn1.codec.der import decoder as der_decoder
from pyasn1.type import namedtype, tag, univ

KEY_DESCRIPTION_OID = "1.3.6.1.4.1.11129.2.1.17"
PROOF_OF_BINDING_OID = "1.3.6.1.4.1.11129.2.1.26"


def explicit(number, component):
    return component.subtype(explicitTag=tag.Tag(tag.tagClassContext, tag.tagFormatConstructed, number))


class SetOfInteger(univ.SetOf):
    componentType = univ.Integer()


class RootOfTrust(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("verifiedBootKey", univ.OctetString()),
        namedtype.NamedType("deviceLocked", univ.Boolean()),
        namedtype.NamedType("verifiedBootState", univ.Enumerated()),
        namedtype.OptionalNamedType("verifiedBootHash", univ.OctetString()),
    )


# Every member of AuthorizationList up to KeyMint 3, in tag order (DER order).
AUTHORIZATION_MEMBERS = [
    ("purpose", 1, SetOfInteger), ("algorithm", 2, univ.Integer), ("keySize", 3, univ.Integer),
    ("blockMode", 4, SetOfInteger), ("digest", 5, SetOfInteger), ("padding", 6, SetOfInteger),
    ("callerNonce", 7, univ.Null), ("minMacLength", 8, univ.Integer), ("ecCurve", 10, univ.Integer),
    ("rsaPublicExponent", 200, univ.Integer), ("mgfDigest", 203, SetOfInteger),
    ("rollbackResistance", 303, univ.Null), ("earlyBootOnly", 305, univ.Null),
    ("activeDateTime", 400, univ.Integer), ("originationExpireDateTime", 401, univ.Integer),
    ("usageExpireDateTime", 402, univ.Integer), ("usageCountLimit", 405, univ.Integer),
    ("noAuthRequired", 503, univ.Null), ("userAuthType", 504, univ.Integer),
    ("authTimeout", 505, univ.Integer), ("allowWhileOnBody", 506, univ.Null),
    ("trustedUserPresenceRequired", 507, univ.Null), ("trustedConfirmationRequired", 508, univ.Null),
    ("unlockedDeviceRequired", 509, univ.Null), ("allApplications", 600, univ.Null),
    ("creationDateTime", 701, univ.Integer), ("origin", 702, univ.Integer),
    ("rootOfTrust", 704, RootOfTrust), ("osVersion", 705, univ.Integer),
    ("osPatchLevel", 706, univ.Integer), ("attestationApplicationId", 709, univ.OctetString),
    ("attestationIdBrand", 710, univ.OctetString), ("attestationIdDevice", 711, univ.OctetString),
    ("attestationIdProduct", 712, univ.OctetString), ("attestationIdSerial", 713, univ.OctetString),
    ("attestationIdImei", 714, univ.OctetString), ("attestationIdMeid", 715, univ.OctetString),
    ("attestationIdManufacturer", 716, univ.OctetString), ("attestationIdModel", 717, univ.OctetString),
    ("vendorPatchLevel", 718, univ.Integer), ("bootPatchLevel", 719, univ.Integer),
    ("deviceUniqueAttestation", 720, univ.Null), ("identityCredentialKey", 721, univ.Null),
    ("attestationIdSecondImei", 723, univ.OctetString),
]


class AuthorizationList(univ.Sequence):
    componentType = namedtype.NamedTypes(
        *[namedtype.OptionalNamedType(name, explicit(number, kind())) for name, number, kind in AUTHORIZATION_MEMBERS]
    )


class KeyDescription(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("attestationVersion", univ.Integer()),
        namedtype.NamedType("attestationSecurityLevel", univ.Enumerated()),
        namedtype.NamedType("keyMintVersion", univ.Integer()),
        namedtype.NamedType("keyMintSecurityLevel", univ.Enumerated()),
        namedtype.NamedType("attestationChallenge", univ.OctetString()),
        namedtype.NamedType("uniqueId", univ.OctetString()),
        namedtype.NamedType("softwareEnforced", AuthorizationList()),
        namedtype.NamedType("hardwareEnforced", AuthorizationList()),
    )


class PackageInfo(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("packageName", univ.OctetString()),
        namedtype.NamedType("version", univ.Integer()),
    )


class SetOfPackageInfo(univ.SetOf):
    componentType = PackageInfo()


class SetOfOctetString(univ.SetOf):
    componentType = univ.OctetString()


class AttestationApplicationId(univ.Sequence):
    componentType = namedtype.NamedTypes(
        namedtype.NamedType("packageInfos", SetOfPackageInfo()),
        namedtype.NamedType("signatureDigests", SetOfOctetString()),
    )


def present(value):
    return value is not None and value.isValue


def read_list(auth):
    out = {}
    purposes = auth["purpose"]
    if present(purposes):
        out["purposes"] = sorted(int(p) for p in purposes)
    root = auth["rootOfTrust"]
    if present(root):
        out["rootOfTrust"] = {
            "deviceLocked": bool(root["deviceLocked"]),
            "verifiedBootState": int(root["verifiedBootState"]),
        }
    app_id = auth["attestationApplicationId"]
    if present(app_id):
        decoded, _ = der_decoder.decode(bytes(app_id), asn1Spec=AttestationApplicationId())
        out["packages"] = sorted(bytes(p["packageName"]).decode() for p in decoded["packageInfos"])
    out["identityCredentialKey"] = present(auth["identityCredentialKey"])
    return out


def key_description(der):
    cert = x509.load_der_x509_certificate(der)
    try:
        extension = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(KEY_DESCRIPTION_OID))
    except x509.ExtensionNotFound:
        return None
    record, rest = der_decoder.decode(extension.value.value, asn1Spec=KeyDescription())
    assert not rest, "trailing bytes after KeyDescription"
    return {
        "attestationVersion": int(record["attestationVersion"]),
        "securityLevel": int(record["attestationSecurityLevel"]),
        "challenge": bytes(record["attestationChallenge"]).hex(),
        "softwareEnforced": read_list(record["softwareEnforced"]),
        "hardwareEnforced": read_list(record["hardwareEnforced"]),
    }


def public_hex(key):
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint).hex()


def read_auth_key(der):
    cert = x509.load_der_x509_certificate(der)
    # As identity-credential's Util.getPopSha256FromAuthKeyCert: the extension's OCTET STRING holds
    # the CBOR array itself.
    value = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(PROOF_OF_BINDING_OID))
    binding = cbor2.loads(value.value.value)
    assert isinstance(binding, list) and len(binding) == 2 and binding[0] == "ProofOfBinding", binding
    assert isinstance(binding[1], bytes) and len(binding[1]) == 32
    return {
        "pop_sha256": binding[1].hex(),
        "critical": value.critical,
        "issuer": cert.issuer.rfc4514_string(),
        "subject": cert.subject.rfc4514_string(),
        "serial": cert.serial_number,
        "days": (cert.not_valid_after_utc - cert.not_valid_before_utc).days,
        "auth_key": public_hex(cert.public_key()),
    }


def private_key(scalar_hex):
    return ec.derive_private_key(int(scalar_hex, 16), ec.SECP256R1())


def make_auth_key(scalar_hex, pop_hex):
    credential_key = private_key(scalar_hex)
    auth_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    binding = cbor2.dumps(["ProofOfBinding", bytes.fromhex(pop_hex)])
    cert = (
        x509.CertificateBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Android Identity Credential Key")]))
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Android Identity Credential Authentication Key")]))
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .public_key(auth_key.public_key())
        .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(PROOF_OF_BINDING_OID), binding), critical=False)
        .sign(credential_key, hashes.SHA256())
    )
    return {"der": cert.public_bytes(serialization.Encoding.DER).hex(), "auth_key": public_hex(auth_key.public_key())}


def sig_structure(protected, payload):
    return cbor2.dumps(["Signature1", protected, b"", payload])


def verify_proof(public_hex_key, cose_hex):
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes.fromhex(public_hex_key))
    sign1 = cbor2.loads(bytes.fromhex(cose_hex))
    if isinstance(sign1, cbor2.CBORTag):
        sign1 = sign1.value
    protected, unprotected, payload, signature = sign1
    assert cbor2.loads(protected) == {1: -7}, "protected header must be {1: -7} (ES256)"
    assert len(signature) == 64, "an ES256 signature is r||s, 64 bytes"
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    try:
        key.verify(encode_dss_signature(r, s), sig_structure(protected, payload), ec.ECDSA(hashes.SHA256()))
        valid = True
    except InvalidSignature:
        valid = False
    item = cbor2.loads(payload)
    described = {"valid": valid, "unprotected": len(unprotected), "tag": item[0], "docType": item[1]}
    if item[0] == "ProofOfOwnership":
        described["challenge"] = item[2].hex()
        described["testCredential"] = item[3]
    elif item[0] == "ProofOfProvisioning":
        described["profiles"] = item[2]
        described["nameSpaces"] = {
            ns: [[e["name"], cbor2.dumps(e["value"]).hex(), e["accessControlProfiles"]] for e in entries]
            for ns, entries in item[3].items()
        }
        described["testCredential"] = item[4]
        described["sha256"] = hashlib.sha256(payload).hexdigest()
    return described


def make_provisioning(scalar_hex, request):
    key = private_key(scalar_hex)
    data = {
        ns: [{"name": name, "value": cbor2.loads(bytes.fromhex(value)), "accessControlProfiles": [0]}
             for name, value in entries]
        for ns, entries in request["nameSpaces"].items()
    }
    payload = cbor2.dumps(["ProofOfProvisioning", request["docType"], [{"id": 0}], data, False])
    protected = cbor2.dumps({1: -7})
    r, s = decode_dss_signature(key.sign(sig_structure(protected, payload), ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return cbor2.dumps([protected, {}, payload, signature]).hex()


def credential_payload(hex_payload):
    payload = cbor2.loads(bytes.fromhex(hex_payload))
    return {
        "docType": payload["docType"],
        "nameSpaces": {
            ns: {name: cbor2.dumps(value).hex() for name, value in elements.items()}
            for ns, elements in payload["nameSpaces"].items()
        },
    }


def encode_key_description(challenge, purposes, identity_credential=True):
    from pyasn1.codec.der import encoder

    def member(name):
        spec = AuthorizationList.componentType[name].asn1Object
        return spec.clone()

    software = AuthorizationList()
    app_id = AttestationApplicationId()
    info = PackageInfo()
    info["packageName"] = b"com.google.android.gms"
    info["version"] = 1
    app_id["packageInfos"].append(info)
    app_id["signatureDigests"].append(univ.OctetString(b"\x11" * 32))
    software["attestationApplicationId"] = member("attestationApplicationId").clone(encoder.encode(app_id))
    hardware = AuthorizationList()
    purpose = member("purpose")
    for p in purposes:
        purpose.append(p)
    hardware["purpose"] = purpose
    root = member("rootOfTrust")
    root["verifiedBootKey"] = b"\x22" * 32
    root["deviceLocked"] = True
    root["verifiedBootState"] = 0
    root["verifiedBootHash"] = b"\x33" * 32
    hardware["rootOfTrust"] = root
    if identity_credential:
        hardware["identityCredentialKey"] = member("identityCredentialKey").clone(b"")
    record = KeyDescription()
    record["attestationVersion"] = 200
    record["attestationSecurityLevel"] = 1
    record["keyMintVersion"] = 200
    record["keyMintSecurityLevel"] = 1
    record["attestationChallenge"] = challenge
    record["uniqueId"] = b""
    record["softwareEnforced"] = software
    record["hardwareEnforced"] = hardware
    return encoder.encode(record)


def forge_chains(challenge):
    """A valid chain root -> CA -> leaf, and variants each breaking one path rule, built with pyca
    only. Every variant is otherwise valid, so that the rule it breaks is the one refusal."""
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def cert(subject, issuer_name, public_key, signer, ca=None, usage="sign", attestation=None,
             extra=None, not_before=None, not_after=None, subject_name=None):
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject_name or name(subject))
            .issuer_name(issuer_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or now - day)
            .not_valid_after(not_after or now + 365 * day)
        )
        if ca is not None:
            builder = builder.add_extension(x509.BasicConstraints(ca=ca[0], path_length=ca[1]), critical=True)
        if usage == "ca":
            builder = builder.add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        elif usage == "sign":
            builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        if attestation is not None:
            builder = builder.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(KEY_DESCRIPTION_OID), attestation), critical=False)
        for ext, critical in extra or []:
            builder = builder.add_extension(ext, critical=critical)
        return builder.sign(signer, hashes.SHA256())

    def der(c):
        return c.public_bytes(serialization.Encoding.DER).hex()

    def key():
        return ec.generate_private_key(ec.SECP256R1())

    leaf_record = encode_key_description(challenge, [2])
    root_key, ca_key, leaf_key = key(), key(), key()
    root = cert("Forge root", name("Forge root"), root_key.public_key(), root_key, ca=(True, None), usage="ca")
    ca = cert("Forge CA", root.subject, ca_key.public_key(), root_key, ca=(True, 0), usage="ca")

    def leaf(issuer, signer, **kw):
        return cert("Android Identity Credential Key", issuer, leaf_key.public_key(), signer,
                    usage="sign", attestation=leaf_record, **kw)

    chains = {}
    chains["good"] = [leaf(ca.subject, ca_key), ca, root]
    attest_key = key()
    attest = cert("Android Keystore Key", ca.subject, attest_key.public_key(), ca_key,
                  attestation=encode_key_description(b"attest", [7], False))
    chains["good_attest_key"] = [leaf(attest.subject, attest_key), attest, ca, root]
    # An app key (cA false) signing a leaf with an invented KeyDescription.
    app = key()
    ca_false = cert("App key", ca.subject, app.public_key(), ca_key, ca=(False, None))
    chains["ca_false"] = [leaf(ca_false.subject, app), ca_false, ca, root]
    no_bc = cert("No constraints", ca.subject, app.public_key(), ca_key)
    chains["no_basic_constraints"] = [leaf(no_bc.subject, app), no_bc, ca, root]
    chains["issuer_mismatch"] = [leaf(name("Somebody else"), ca_key), ca, root]
    no_sign = cert("CA without keyCertSign", root.subject, app.public_key(), root_key, ca=(True, None), usage="sign")
    chains["no_key_cert_sign"] = [leaf(no_sign.subject, app), no_sign, root]
    second_key = key()
    second = cert("Second CA", ca.subject, second_key.public_key(), ca_key, ca=(True, None), usage="ca")
    chains["path_length"] = [leaf(second.subject, second_key), second, ca, root]
    old_key = key()
    old = cert("Old CA", root.subject, old_key.public_key(), root_key, ca=(True, None), usage="ca",
               not_before=now - 800 * day, not_after=now - 400 * day)
    chains["expired_intermediate"] = [leaf(old.subject, old_key), old, root]
    chains["bad_signature"] = [leaf(ca.subject, key()), ca, root]
    app_key_attested = cert("Android Keystore Key", ca.subject, app.public_key(), ca_key, usage="sign",
                            attestation=encode_key_description(b"app", [2], False))
    chains["app_key"] = [leaf(app_key_attested.subject, app), app_key_attested, ca, root]
    high_attest_key = key()
    high_attest = cert("High attest key", root.subject, high_attest_key.public_key(), root_key,
                       attestation=encode_key_description(b"attest", [7], False))
    low_ca_key = key()
    low_ca = cert("Low CA", high_attest.subject, low_ca_key.public_key(), high_attest_key, ca=(True, None), usage="ca")
    chains["attest_key_above_ca"] = [leaf(low_ca.subject, low_ca_key), low_ca, high_attest, root]
    odd_key = key()
    odd = cert("Odd CA", root.subject, odd_key.public_key(), root_key, ca=(True, None), usage="ca",
               extra=[(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"), True)])
    chains["unknown_critical"] = [leaf(odd.subject, odd_key), odd, root]
    other_root_key = key()
    other_root = cert("Forge root", name("Forge root"), other_root_key.public_key(), other_root_key, ca=(True, None), usage="ca")
    other_ca = cert("Forge CA", other_root.subject, ca_key.public_key(), other_root_key, ca=(True, 0), usage="ca")
    chains["untrusted_root"] = [leaf(ca.subject, ca_key), other_ca, other_root]
    chains["leaf_is_ca"] = [leaf(ca.subject, ca_key, ca=(True, None)), ca, root]
    return {"root": der(root), "chains": {k: [der(c) for c in v] for k, v in chains.items()}}


def main():
    command = sys.argv[1]
    stdin = sys.stdin.read()
    if command == "key-descriptions":
        out = [key_description(bytes.fromhex(c)) for c in json.loads(stdin)]
    elif command == "read-auth-key":
        out = read_auth_key(bytes.fromhex(stdin.strip()))
    elif command == "make-auth-key":
        out = make_auth_key(sys.argv[2], sys.argv[3])
    elif command == "verify-proof":
        out = verify_proof(sys.argv[2], stdin.strip())
    elif command == "make-provisioning":
        out = make_provisioning(sys.argv[2], json.loads(stdin))
    elif command == "credential-payload":
        out = credential_payload(stdin.strip())
    elif command == "forge-chains":
        out = forge_chains(bytes.fromhex(sys.argv[2]))
    else:
        raise SystemExit("unknown command " + command)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
