//! Keys in a PKCS#11 token (an HSM, or SoftHSM in tests), behind the [`Signer`] trait. Keys are
//! generated inside the token (sensitive, never extractable) and found again by label; only their
//! public halves and the certificates leave it. One module is loaded and initialised once per
//! process, and a small pool of logged-in sessions serves concurrent signatures.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use p256::ecdsa::{Signature, VerifyingKey};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::signer::{Signer, SignerError};

/// DER of the named curve P-256 (OID 1.2.840.10045.3.1.7), the `CKA_EC_PARAMS` of every key.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// `[keys.pkcs11]`: the token that holds the issuer's signing keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The vendor's PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`, a cloud HSM's library).
    pub module: PathBuf,
    /// Label of the token to use (or give `slot`).
    #[serde(default)]
    pub token_label: String,
    /// Id of the slot whose token to use, for modules whose tokens share a label; with
    /// `token_label` as well, both must match.
    #[serde(default)]
    pub slot: Option<u64>,
    /// File holding the user PIN (a secret; never logged). Or set `pin`.
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
    /// The user PIN itself, for an environment variable (`BREVET_KEYS__PKCS11__PIN`); a secret.
    #[serde(default, skip_serializing)]
    pub pin: Option<SecretString>,
    /// Sessions opened for concurrent signing.
    #[serde(default = "default_sessions")]
    pub sessions: usize,
}

fn default_sessions() -> usize {
    4
}

/// Why the token could not be used. Each names the setting or key at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TokenError(String);

/// A logged-in token.
pub struct Token {
    label: String,
    sessions: Vec<Mutex<Session>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({:?})", self.label)
    }
}

/// Modules loaded in this process: PKCS#11 allows one initialisation per module and process.
static MODULES: OnceLock<Mutex<Vec<(PathBuf, Pkcs11)>>> = OnceLock::new();
/// A token logged in in this process, by module and label.
type OpenToken = ((PathBuf, String), Arc<Token>);
/// Tokens logged in in this process.
static TOKENS: OnceLock<Mutex<Vec<OpenToken>>> = OnceLock::new();

fn module(path: &Path) -> Result<Pkcs11, TokenError> {
    let mut loaded = MODULES
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, pkcs11)) = loaded.iter().find(|(p, _)| p == path) {
        return Ok(pkcs11.clone());
    }
    let bad = |why: String| {
        TokenError(format!(
            "setting `keys.pkcs11.module`: {}: {why}",
            path.display()
        ))
    };
    let pkcs11 = Pkcs11::new(path).map_err(|e| bad(format!("cannot load it ({e})")))?;
    pkcs11
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .map_err(|e| bad(format!("C_Initialize failed ({e})")))?;
    loaded.push((path.to_owned(), pkcs11.clone()));
    Ok(pkcs11)
}

fn read_pin(config: &Pkcs11Config) -> Result<AuthPin, TokenError> {
    if let Some(pin) = &config.pin {
        return Ok(AuthPin::from(pin.expose_secret().to_owned()));
    }
    let path = config.pin_file.as_ref().ok_or_else(|| {
        TokenError(
            "setting `keys.pkcs11.pin_file`: the token's PIN is needed (pin_file, or BREVET_KEYS__PKCS11__PIN)".into(),
        )
    })?;
    let text = std::fs::read_to_string(path).map_err(|e| {
        TokenError(format!(
            "setting `keys.pkcs11.pin_file`: cannot read {} ({e})",
            path.display()
        ))
    })?;
    Ok(AuthPin::from(
        text.trim_end_matches(['\n', '\r']).to_owned(),
    ))
}

impl Token {
    /// Loads the module, finds the token by label and logs in (once per process).
    pub fn open(config: &Pkcs11Config) -> Result<Arc<Token>, TokenError> {
        let key = (config.module.clone(), config.token_label.clone());
        let mut tokens = TOKENS
            .get_or_init(|| Mutex::new(Vec::new()))
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some((_, token)) = tokens.iter().find(|(k, _)| *k == key) {
            return Ok(token.clone());
        }
        let pkcs11 = module(&config.module)?;
        let slots = pkcs11.get_slots_with_initialized_token().map_err(|e| {
            TokenError(format!(
                "setting `keys.pkcs11.module`: cannot list its tokens ({e})"
            ))
        })?;
        if config.token_label.is_empty() && config.slot.is_none() {
            return Err(TokenError(
                "setting `keys.pkcs11.token_label`: name the token (token_label, or slot)".into(),
            ));
        }
        let mut seen = Vec::new();
        let mut found = None;
        for slot in slots {
            let info = pkcs11
                .get_token_info(slot)
                .map_err(|e| TokenError(format!("cannot read a token's information ({e})")))?;
            let label = info.label().trim_end().to_owned();
            let label_matches = config.token_label.is_empty() || label == config.token_label;
            let slot_matches = config.slot.is_none_or(|id| id == slot.id());
            if label_matches && slot_matches {
                found = Some((slot, label));
                break;
            }
            seen.push(format!("slot {}: {label:?}", slot.id()));
        }
        let (slot, label) = found.ok_or_else(|| {
            let (key, wanted) = match config.slot {
                Some(id) if config.token_label.is_empty() => ("slot", format!("in slot {id}")),
                Some(id) => (
                    "slot",
                    format!("labelled {:?} in slot {id}", config.token_label),
                ),
                None => ("token_label", format!("labelled {:?}", config.token_label)),
            };
            TokenError(format!(
                "setting `keys.pkcs11.{key}`: the module has no token {wanted} (it has {})",
                seen.join(", ")
            ))
        })?;
        let pin = read_pin(config)?;
        let mut sessions = Vec::new();
        for n in 0..config.sessions.max(1) {
            let session = pkcs11.open_rw_session(slot).map_err(|e| {
                TokenError(format!("cannot open a session on token {:?} ({e})", label))
            })?;
            if n == 0 {
                // A login holds for every session of the application.
                session.login(UserType::User, Some(&pin)).map_err(|e| {
                    TokenError(format!(
                        "setting `keys.pkcs11.pin_file`: token {:?} refused the PIN ({e})",
                        label
                    ))
                })?;
            }
            sessions.push(Mutex::new(session));
        }
        let token = Arc::new(Token {
            label,
            sessions,
            next: AtomicUsize::new(0),
        });
        tokens.push((key, token.clone()));
        Ok(token)
    }

    /// The token `keys.pkcs11` names, if it names one.
    pub fn configured(config: Option<&Pkcs11Config>) -> Result<Option<Arc<Token>>, TokenError> {
        config.map(Token::open).transpose()
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs `work` on one of the sessions: a free one if any, else the next in turn.
    fn with_session<T>(&self, work: impl FnOnce(&Session) -> T) -> T {
        for session in &self.sessions {
            if let Ok(guard) = session.try_lock() {
                return work(&guard);
            }
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        let guard = self.sessions[n].lock().unwrap_or_else(|e| e.into_inner());
        work(&guard)
    }

    /// Generates a P-256 key pair in the token under `label`, for signing or (`agreement`) for
    /// ECDH: private half sensitive and never extractable, both halves token objects.
    fn generate_pair(
        &self,
        label: &str,
        agreement: bool,
    ) -> Result<(ObjectHandle, VerifyingKey), TokenError> {
        let public_template = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::Verify(!agreement),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(!agreement),
            Attribute::Derive(agreement),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let (public, private) = self
            .with_session(|s| {
                s.generate_key_pair(
                    &Mechanism::EccKeyPairGen,
                    &public_template,
                    &private_template,
                )
            })
            .map_err(|e| {
                TokenError(format!(
                    "token {:?}: cannot generate a P-256 key ({e})",
                    self.label
                ))
            })?;
        Ok((private, self.public_key(public, label)?))
    }

    /// Generates a P-256 signing key in the token under `label`.
    pub fn generate_p256(self: &Arc<Self>, label: &str) -> Result<TokenSigner, TokenError> {
        let (key, public) = self.generate_pair(label, false)?;
        Ok(TokenSigner {
            token: self.clone(),
            key,
            public,
            label: label.to_owned(),
        })
    }

    /// Generates a P-256 key-agreement (hybrid-encryption) key in the token under `label`.
    pub fn generate_p256_agreement(
        self: &Arc<Self>,
        label: &str,
    ) -> Result<TokenRecipient, TokenError> {
        let (key, public) = self.generate_pair(label, true)?;
        Ok(TokenRecipient {
            token: self.clone(),
            key,
            public,
            label: label.to_owned(),
        })
    }

    /// The key-agreement key labelled `label`.
    pub fn recipient(self: &Arc<Self>, label: &str) -> Result<TokenRecipient, TokenError> {
        let (key, public) = self.find_pair(label)?;
        Ok(TokenRecipient {
            token: self.clone(),
            key,
            public,
            label: label.to_owned(),
        })
    }

    /// The signer of the private key labelled `label`.
    pub fn signer(self: &Arc<Self>, label: &str) -> Result<TokenSigner, TokenError> {
        let (key, public) = self.find_pair(label)?;
        Ok(TokenSigner {
            token: self.clone(),
            key,
            public,
            label: label.to_owned(),
        })
    }

    /// The private key labelled `label` and its public half.
    fn find_pair(&self, label: &str) -> Result<(ObjectHandle, VerifyingKey), TokenError> {
        let find = |class: ObjectClass| {
            self.with_session(|s| {
                s.find_objects(&[
                    Attribute::Class(class),
                    Attribute::KeyType(KeyType::EC),
                    Attribute::Label(label.as_bytes().to_vec()),
                ])
            })
            .map_err(|e| {
                TokenError(format!(
                    "token {:?}: cannot search for key {label:?} ({e})",
                    self.label
                ))
            })
        };
        let private = find(ObjectClass::PRIVATE_KEY)?;
        let public = find(ObjectClass::PUBLIC_KEY)?;
        let (Some(&private), Some(&public)) = (private.first(), public.first()) else {
            return Err(TokenError(format!(
                "key {label:?} is not in token {:?}",
                self.label
            )));
        };
        Ok((private, self.public_key(public, label)?))
    }

    fn public_key(&self, handle: ObjectHandle, label: &str) -> Result<VerifyingKey, TokenError> {
        let attributes = self
            .with_session(|s| s.get_attributes(handle, &[AttributeType::EcPoint]))
            .map_err(|e| {
                TokenError(format!(
                    "token {:?}: cannot read key {label:?} ({e})",
                    self.label
                ))
            })?;
        let point = attributes
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(point) => Some(point),
                _ => None,
            })
            .ok_or_else(|| TokenError(format!("key {label:?} has no EC point")))?;
        // CKA_EC_POINT is the DER OCTET STRING of the SEC1 point; some modules give it bare.
        let sec1 = match point.as_slice() {
            [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
            bare => bare,
        };
        VerifyingKey::from_sec1_bytes(sec1)
            .map_err(|e| TokenError(format!("key {label:?} is not a P-256 key ({e})")))
    }
}

/// A P-256 private key in a token.
pub struct TokenSigner {
    token: Arc<Token>,
    key: ObjectHandle,
    public: VerifyingKey,
    label: String,
}

impl TokenSigner {
    /// The key's label in the token.
    pub fn label(&self) -> &str {
        &self.label
    }
}

/// A P-256 key-agreement key in a token: decrypts HPKE (the Wallet hybrid key) through the
/// token's `CKM_ECDH1_DERIVE`; only the per-message DH secret leaves the token.
pub struct TokenRecipient {
    token: Arc<Token>,
    key: ObjectHandle,
    public: VerifyingKey,
    label: String,
}

impl TokenRecipient {
    /// The public key.
    pub fn public_key(&self) -> VerifyingKey {
        self.public
    }

    /// The ECDH shared secret (x coordinate) with `peer`, a 65-byte uncompressed point.
    fn agree(&self, peer: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, TokenError> {
        use cryptoki::mechanism::elliptic_curve::{EcKdf, Ecdh1DeriveParams};
        let params = Ecdh1DeriveParams::new(EcKdf::null(), peer);
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::ValueLen(32.into()),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ];
        let fail = |e: cryptoki::error::Error| {
            TokenError(format!(
                "token {:?}, key {:?}: ECDH failed ({e})",
                self.token.label, self.label
            ))
        };
        self.token.with_session(|s| {
            let derived = s
                .derive_key(&Mechanism::Ecdh1Derive(params), self.key, &template)
                .map_err(fail)?;
            let value = s.get_attributes(derived, &[AttributeType::Value]);
            // The session object goes whatever happened to the read.
            let _ = s.destroy_object(derived);
            value
                .map_err(fail)?
                .into_iter()
                .find_map(|a| match a {
                    Attribute::Value(v) => Some(zeroize::Zeroizing::new(v)),
                    _ => None,
                })
                .ok_or_else(|| TokenError("the token returned no ECDH secret".into()))
        })
    }
}

impl std::fmt::Debug for TokenRecipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "TokenRecipient({:?} in {:?})",
            self.label, self.token.label
        )
    }
}

impl super::hpke::HpkeRecipient for TokenRecipient {
    fn public_bytes(&self) -> Vec<u8> {
        self.public.to_encoded_point(false).as_bytes().to_vec()
    }

    fn open(
        &self,
        context: super::hpke::HpkeContext<'_>,
        encapsulated_key: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, super::hpke::HpkeError> {
        if encapsulated_key.len() != 65 || encapsulated_key[0] != 0x04 {
            return Err(super::hpke::HpkeError::BadEncapsulatedKey);
        }
        let dh = self
            .agree(encapsulated_key)
            .map_err(|e| super::hpke::HpkeError::Unavailable(e.to_string()))?;
        super::hpke::open_with_dh(
            &dh,
            &self.public_bytes(),
            context,
            encapsulated_key,
            ciphertext,
        )
    }
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSigner({:?} in {:?})", self.label, self.token.label)
    }
}

impl Signer for TokenSigner {
    fn verifying_key(&self) -> VerifyingKey {
        self.public
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, SignerError> {
        // CKM_ECDSA signs a digest, which every token offers; the hash is made here.
        let digest = Sha256::digest(message);
        let raw = self
            .token
            .with_session(|s| s.sign(&Mechanism::Ecdsa, self.key, &digest))
            .map_err(|e| {
                SignerError::Failed(format!(
                    "token {:?}, key {:?}: {e}",
                    self.token.label, self.label
                ))
            })?;
        Signature::from_slice(&raw).map_err(|e| {
            SignerError::Failed(format!(
                "token {:?} returned a malformed signature ({e})",
                self.token.label
            ))
        })
    }
}
