//! Validating certificate chains that Brevet does not issue: Android key attestation chains
//! (leaf first, ending in a trust anchor the operator configured).
//!
//! No maintained Rust path validator fits: `webpki` and its kin validate TLS end entities and
//! refuse non-CA certificates in the middle of a path, yet since Android 12 a genuine attestation
//! chain may carry *attest keys* between the leaf and the batch CA — certificates that are not CAs
//! but hold their own attestation with the hardware-enforced purpose ATTEST_KEY. So this module is
//! a small validator with one rule per check, each refusal naming its rule ([`Rule`]):
//!
//! 1. every certificate is valid at the time of the check;
//! 2. each certificate's issuer name is its parent's subject name (DER equality);
//! 3. each certificate is signed by its parent's key (ECDSA P-256/SHA-256, P-384/SHA-384, RSA
//!    PKCS#1 v1.5/SHA-256, the algorithms of real attestation chains);
//! 4. the last certificate is self-signed and its SHA-256 fingerprint is a configured anchor;
//! 5. every certificate above the leaf is either an attest key — a certificate carrying its own
//!    KeyDescription whose hardware-enforced purposes are exactly {ATTEST_KEY} — or a CA
//!    (basicConstraints cA, keyUsage keyCertSign, as RFC 5280 §4.2.1.9 and §4.2.1.3 require);
//!    attest keys come right above the leaf, never above a CA. This is the rule of Google's own
//!    verifier (`google/android-key-attestation`, `ParsedAttestationRecord`): an ordinary app key
//!    attested on a genuine phone cannot vouch for a key of the attacker's choosing;
//! 6. a CA's pathLenConstraint bounds the CA certificates below it (attest keys are not CAs and
//!    are not counted; self-issued certificates are not counted, RFC 5280 §4.2.1.9);
//! 7. no certificate carries a critical extension this validator does not understand, and the
//!    leaf is not a CA.

use std::time::SystemTime;

use p256::pkcs8::DecodePublicKey;
use sha2::{Digest, Sha256};
use x509_cert::der::oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, SHA_256_WITH_RSA_ENCRYPTION,
};
use x509_cert::der::oid::ObjectIdentifier;
use x509_cert::der::{Decode, Encode};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::Certificate;

use super::certs::{check_validity, raw_extension_value};

/// A rule of the path validation, named in every refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The chain has certificates, and not too many.
    Shape,
    /// Each certificate is within its validity.
    Validity,
    /// Each issuer name is the parent's subject name.
    NameChaining,
    /// Each certificate is signed by its parent.
    Signature,
    /// The chain ends in a configured anchor.
    TrustAnchor,
    /// Above the leaf only attest keys and CAs.
    IssuerRole,
    /// Attest keys come right above the leaf.
    AttestKeyOrder,
    /// pathLenConstraint.
    PathLength,
    /// No unknown critical extension; the leaf is no CA.
    Extensions,
}

impl Rule {
    /// The rule's name as refusals print it.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Shape => "chain shape",
            Rule::Validity => "validity",
            Rule::NameChaining => "name chaining",
            Rule::Signature => "signature",
            Rule::TrustAnchor => "trust anchor",
            Rule::IssuerRole => "issuer role",
            Rule::AttestKeyOrder => "attest key order",
            Rule::PathLength => "path length",
            Rule::Extensions => "extensions",
        }
    }
}

/// Why a chain was refused: the rule broken and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail} (rule: {})", .rule.name())]
pub struct ChainError {
    /// The rule.
    pub rule: Rule,
    /// What broke it, naming the certificate.
    pub detail: String,
}

impl ChainError {
    fn new(rule: Rule, detail: impl Into<String>) -> Self {
        Self {
            rule,
            detail: detail.into(),
        }
    }
}

/// Most certificates in an attestation chain ([I]; Android's have 3 to 8).
pub const MAX_CHAIN: usize = 10;

const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
const EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");

/// What a certificate above the leaf turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// An Android attest key.
    AttestKey,
    /// A certification authority.
    Ca,
}

/// Tells whether a certificate carries a key attestation and, if so, whether it is an attest key
/// (its hardware-enforced purposes exactly {ATTEST_KEY}); supplied by the attestation module,
/// which owns the KeyDescription parser.
pub trait AttestationProbe {
    /// `None`: no attestation extension; `Some(Ok(()))`: an attest key; `Some(Err(why))`: an
    /// attestation of another kind of key.
    fn attest_key(&self, cert: &Certificate) -> Option<Result<(), String>>;
}

/// Whether `cert` carries a valid signature by the key in `issuer`.
pub fn signed_by(cert: &Certificate, issuer: &Certificate) -> Result<(), ChainError> {
    let fail = |what: &str| ChainError::new(Rule::Signature, what);
    let tbs = cert
        .tbs_certificate
        .to_der()
        .map_err(|_| fail("unencodable certificate"))?;
    let signature = cert
        .signature
        .as_bytes()
        .ok_or_else(|| fail("signature has unused bits"))?;
    let spki = issuer
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| fail("unencodable issuer key"))?;
    let algorithm = cert.signature_algorithm.oid;
    let verified = if algorithm == ECDSA_WITH_SHA_256 {
        use p256::ecdsa::signature::Verifier;
        let key = p256::ecdsa::VerifyingKey::from_public_key_der(&spki)
            .map_err(|_| fail("ecdsa-with-SHA256 signature but the issuer key is not P-256"))?;
        let signature = p256::ecdsa::Signature::from_der(signature)
            .map_err(|_| fail("malformed ECDSA signature"))?;
        key.verify(&tbs, &signature).is_ok()
    } else if algorithm == ECDSA_WITH_SHA_384 {
        use p384::ecdsa::signature::Verifier;
        let key = p384::ecdsa::VerifyingKey::from_public_key_der(&spki)
            .map_err(|_| fail("ecdsa-with-SHA384 signature but the issuer key is not P-384"))?;
        let signature = p384::ecdsa::Signature::from_der(signature)
            .map_err(|_| fail("malformed ECDSA signature"))?;
        key.verify(&tbs, &signature).is_ok()
    } else if algorithm == SHA_256_WITH_RSA_ENCRYPTION {
        use rsa::pkcs8::DecodePublicKey as _;
        let key = rsa::RsaPublicKey::from_public_key_der(&spki)
            .map_err(|_| fail("sha256WithRSAEncryption signature but the issuer key is not RSA"))?;
        key.verify(
            rsa::Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(&tbs),
            signature,
        )
        .is_ok()
    } else {
        return Err(fail(&format!(
            "unsupported signature algorithm {algorithm}"
        )));
    };
    if verified {
        Ok(())
    } else {
        Err(fail("the signature does not verify with the issuer's key"))
    }
}

/// SHA-256 of a certificate's DER, the form in which trust anchors are compared.
pub fn fingerprint(cert: &Certificate) -> Result<[u8; 32], ChainError> {
    let der = cert
        .to_der()
        .map_err(|e| ChainError::new(Rule::Shape, format!("unencodable certificate: {e}")))?;
    Ok(Sha256::digest(der).into())
}

fn self_issued(cert: &Certificate) -> bool {
    cert.tbs_certificate.issuer == cert.tbs_certificate.subject
}

/// Rule 5's CA half: basicConstraints cA and keyUsage keyCertSign. Returns the path length.
fn ca_constraints(cert: &Certificate, at: &str) -> Result<Option<u8>, ChainError> {
    let role = |what: String| ChainError::new(Rule::IssuerRole, what);
    let constraints = raw_extension_value(cert, BASIC_CONSTRAINTS)
        .ok_or_else(|| {
            role(format!(
                "{at} signs another certificate but has no basicConstraints: it is not a CA"
            ))
        })
        .and_then(|der| {
            BasicConstraints::from_der(der)
                .map_err(|_| role(format!("{at} has a malformed basicConstraints")))
        })?;
    if !constraints.ca {
        return Err(role(format!(
            "{at} signs another certificate but its basicConstraints say cA is false"
        )));
    }
    let usage = raw_extension_value(cert, KEY_USAGE)
        .ok_or_else(|| role(format!("{at} is a CA without keyUsage")))
        .and_then(|der| {
            KeyUsage::from_der(der).map_err(|_| role(format!("{at} has a malformed keyUsage")))
        })?;
    if !usage.0.contains(KeyUsages::KeyCertSign) {
        return Err(role(format!(
            "{at} is a CA whose keyUsage lacks keyCertSign"
        )));
    }
    Ok(constraints.path_len_constraint)
}

/// Rule 7: no critical extension beyond the few this validator reads or that key usage
/// enforcement needs.
fn check_critical(cert: &Certificate, at: &str) -> Result<(), ChainError> {
    let known = [BASIC_CONSTRAINTS, KEY_USAGE, EXTENDED_KEY_USAGE];
    for ext in cert.tbs_certificate.extensions.iter().flatten() {
        if ext.critical && !known.contains(&ext.extn_id) {
            return Err(ChainError::new(
                Rule::Extensions,
                format!(
                    "{at} has a critical extension {} that is not understood",
                    ext.extn_id
                ),
            ));
        }
    }
    Ok(())
}

fn describe(index: usize, cert: &Certificate) -> String {
    format!("certificate {index} ({})", cert.tbs_certificate.subject)
}

/// Validates `chain` (leaf first) at `at` against `anchors` (SHA-256 fingerprints of trusted
/// roots). `probe` classifies certificates carrying a key attestation. Returns what each
/// certificate above the leaf is.
pub fn verify_path(
    chain: &[Certificate],
    anchors: &[[u8; 32]],
    at: SystemTime,
    probe: &dyn AttestationProbe,
) -> Result<Vec<Link>, ChainError> {
    if chain.is_empty() || chain.len() > MAX_CHAIN {
        return Err(ChainError::new(
            Rule::Shape,
            format!("a chain must hold 1 to {MAX_CHAIN} certificates"),
        ));
    }
    for (index, cert) in chain.iter().enumerate() {
        check_validity(cert, at).map_err(|e| {
            ChainError::new(Rule::Validity, format!("{}: {e}", describe(index, cert)))
        })?;
        check_critical(cert, &describe(index, cert))?;
    }
    for (index, pair) in chain.windows(2).enumerate() {
        let (child, parent) = (&pair[0], &pair[1]);
        if child.tbs_certificate.issuer != parent.tbs_certificate.subject {
            return Err(ChainError::new(
                Rule::NameChaining,
                format!(
                    "{}'s issuer {} is not the subject of certificate {}",
                    describe(index, child),
                    child.tbs_certificate.issuer,
                    index + 1
                ),
            ));
        }
        signed_by(child, parent).map_err(|e| ChainError {
            detail: format!("{}: {}", describe(index, child), e.detail),
            ..e
        })?;
    }
    let root_index = chain.len() - 1;
    let root = &chain[root_index];
    if !self_issued(root) || signed_by(root, root).is_err() {
        return Err(ChainError::new(
            Rule::TrustAnchor,
            format!(
                "the last certificate ({}) is not a self-signed root",
                root.tbs_certificate.subject
            ),
        ));
    }
    if !anchors.contains(&fingerprint(root)?) {
        return Err(ChainError::new(
            Rule::TrustAnchor,
            format!(
                "the chain ends in {}, which is not a trusted attestation root",
                root.tbs_certificate.subject
            ),
        ));
    }
    if chain.len() > 1
        && raw_extension_value(&chain[0], BASIC_CONSTRAINTS)
            .and_then(|der| BasicConstraints::from_der(der).ok())
            .is_some_and(|bc| bc.ca)
    {
        return Err(ChainError::new(
            Rule::Extensions,
            "the leaf is a CA certificate",
        ));
    }
    // Rules 5 and 6, from the leaf's parent up to (not including) the anchor.
    let mut links = Vec::new();
    let mut cas_below = 0usize;
    for (index, cert) in chain.iter().enumerate().take(root_index).skip(1) {
        let at = describe(index, cert);
        match probe.attest_key(cert) {
            Some(Ok(())) => {
                if links.contains(&Link::Ca) {
                    return Err(ChainError::new(
                        Rule::AttestKeyOrder,
                        format!("{at} is an attest key above a CA certificate"),
                    ));
                }
                links.push(Link::AttestKey);
            }
            Some(Err(why)) => {
                return Err(ChainError::new(
                    Rule::IssuerRole,
                    format!("{at} carries the attestation of a key that is not an attest key ({why}): an ordinary app key cannot vouch for another key"),
                ))
            }
            None => {
                if let Some(limit) = ca_constraints(cert, &at)? {
                    if cas_below > usize::from(limit) {
                        return Err(ChainError::new(
                            Rule::PathLength,
                            format!("{at} allows {limit} CA certificates below it, the chain has {cas_below}"),
                        ));
                    }
                }
                if !self_issued(cert) {
                    cas_below += 1;
                }
                links.push(Link::Ca);
            }
        }
    }
    // The anchor's own constraints bound the CAs below it too.
    if chain.len() > 1 {
        if let Some(Ok(bc)) =
            raw_extension_value(root, BASIC_CONSTRAINTS).map(BasicConstraints::from_der)
        {
            if let Some(limit) = bc.path_len_constraint {
                if cas_below > usize::from(limit) {
                    return Err(ChainError::new(
                        Rule::PathLength,
                        format!("the root allows {limit} CA certificates below it, the chain has {cas_below}"),
                    ));
                }
            }
        }
    }
    Ok(links)
}
