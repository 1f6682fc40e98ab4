//! Pure logic with no I/O: the rules Brevet enforces, kept apart from HTTP and storage so that they
//! can be tested exhaustively and read on their own.

pub mod admin_token;
pub mod credential;
pub mod device;
pub mod mso_validity;
pub mod proofing;
pub mod status_index;
pub mod wallet_credential;

/// A stored or presented name that matches none of an enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownName {
    /// What was being named, e.g. `credential status`.
    pub kind: &'static str,
    /// The name given.
    pub value: String,
}

impl UnknownName {
    /// `value` is no `kind`.
    pub fn new(kind: &'static str, value: &str) -> Self {
        Self {
            kind,
            value: value.to_owned(),
        }
    }
}
