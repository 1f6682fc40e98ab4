//! First start: make sure somebody can administer Brevet.

use crate::domain::admin_token::{Role, TokenSecret};
use crate::store::{NewAdminToken, Store, StoreError};

/// Creates an admin token if the store has none, returning it so that the caller can show it
/// once. Returns `None` when tokens already exist (or another process created the first one).
pub async fn ensure_admin_token(store: &dyn Store) -> Result<Option<TokenSecret>, StoreError> {
    let secret = TokenSecret::generate();
    let token = NewAdminToken {
        name: crate::store::BOOTSTRAP_TOKEN_NAME.to_owned(),
        role: Role::Admin,
        token_hash: secret.hash(),
    };
    Ok(store
        .create_bootstrap_token(&token)
        .await?
        .then_some(secret))
}
