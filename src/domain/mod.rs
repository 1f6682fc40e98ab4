//! Pure logic with no I/O: the rules Brevet enforces, kept apart from HTTP and storage so that they
//! can be tested exhaustively and read on their own.

pub mod admin_token;
pub mod credential;
pub mod device;
pub mod mso_validity;
pub mod proofing;
pub mod wallet_credential;
