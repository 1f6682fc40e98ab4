//! Names and numbers of Android's key attestation and Identity Credential formats that the
//! server and the device simulator must both use. Only constants live here: each side writes its
//! own encoder and parser of the structures (see docs/wallet-api.md, "Device-side encodings").
//!
//! Sources (all public): the key attestation schema on source.android.com ("Key and ID
//! attestation") and `hardware/interfaces/security/keymint/aidl` (`Tag.aidl`, `KeyPurpose.aidl`);
//! the Identity Credential HAL (`hardware/interfaces/identity/aidl`, `IIdentityCredential.aidl`)
//! and its support library (`IdentityCredentialSupport.cpp`).

/// OID of the key attestation extension (`KeyDescription`).
pub const KEY_ATTESTATION_OID: &str = "1.3.6.1.4.1.11129.2.1.17";

/// OID of the extension of an auth-key certificate that carries `ProofOfBinding`. Its `extnValue`
/// OCTET STRING holds the CBOR bytes themselves (one wrap, as every X.509 extension has).
pub const PROOF_OF_BINDING_OID: &str = "1.3.6.1.4.1.11129.2.1.26";

/// KeyMint tags used in an `AuthorizationList` (the context tag number of each member).
pub mod tag {
    /// `[1] purpose SET OF INTEGER`.
    pub const PURPOSE: u64 = 1;
    /// `[2] algorithm INTEGER`.
    pub const ALGORITHM: u64 = 2;
    /// `[3] keySize INTEGER`.
    pub const KEY_SIZE: u64 = 3;
    /// `[5] digest SET OF INTEGER`.
    pub const DIGEST: u64 = 5;
    /// `[10] ecCurve INTEGER`.
    pub const EC_CURVE: u64 = 10;
    /// `[503] noAuthRequired NULL`.
    pub const NO_AUTH_REQUIRED: u64 = 503;
    /// `[701] creationDateTime INTEGER` (milliseconds since the epoch).
    pub const CREATION_DATE_TIME: u64 = 701;
    /// `[702] origin INTEGER`.
    pub const ORIGIN: u64 = 702;
    /// `[704] rootOfTrust RootOfTrust`.
    pub const ROOT_OF_TRUST: u64 = 704;
    /// `[705] osVersion INTEGER`.
    pub const OS_VERSION: u64 = 705;
    /// `[706] osPatchLevel INTEGER`.
    pub const OS_PATCH_LEVEL: u64 = 706;
    /// `[709] attestationApplicationId OCTET STRING` (DER of `AttestationApplicationId`).
    pub const ATTESTATION_APPLICATION_ID: u64 = 709;
    /// `[718] vendorPatchLevel INTEGER`.
    pub const VENDOR_PATCH_LEVEL: u64 = 718;
    /// `[719] bootPatchLevel INTEGER`.
    pub const BOOT_PATCH_LEVEL: u64 = 719;
    /// `[721] identityCredentialKey NULL`.
    pub const IDENTITY_CREDENTIAL_KEY: u64 = 721;
}

/// `KeyPurpose.SIGN`.
pub const PURPOSE_SIGN: i64 = 2;
/// `KeyPurpose.ATTEST_KEY` (Android 12 and later): a key that signs other keys' attestations.
pub const PURPOSE_ATTEST_KEY: i64 = 7;

/// `SecurityLevel.SOFTWARE`.
pub const SECURITY_LEVEL_SOFTWARE: i64 = 0;
/// `SecurityLevel.TRUSTED_ENVIRONMENT`.
pub const SECURITY_LEVEL_TEE: i64 = 1;
/// `SecurityLevel.STRONGBOX`.
pub const SECURITY_LEVEL_STRONGBOX: i64 = 2;

/// `VerifiedBootState.Verified`.
pub const VERIFIED_BOOT_VERIFIED: i64 = 0;

/// First element of a ProofOfOwnership array.
pub const PROOF_OF_OWNERSHIP: &str = "ProofOfOwnership";
/// First element of a ProofOfProvisioning array.
pub const PROOF_OF_PROVISIONING: &str = "ProofOfProvisioning";
/// First element of a ProofOfBinding array.
pub const PROOF_OF_BINDING: &str = "ProofOfBinding";

/// Common name of the issuer of an auth-key certificate (the CredentialKey).
pub const AUTH_KEY_ISSUER_CN: &str = "Android Identity Credential Key";
/// Common name of the subject of an auth-key certificate.
pub const AUTH_KEY_SUBJECT_CN: &str = "Android Identity Credential Authentication Key";

/// The Google applications whose attested identity keys registerDevice accepts by default.
pub const GOOGLE_PACKAGES: [&str; 2] = ["com.google.android.gms", "com.google.android.gsf"];
