//! Admin tokens: the first one, new ones, revocation.

use uuid::Uuid;

use crate::domain::admin_token::{Role, TokenHash, TokenSecret};
use crate::store::{audit, tokens, AdminToken, NewAdminToken, Provenance, Store, StoreError};

/// Outcome of a token revocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRevocation {
    /// Revoked now.
    Revoked,
    /// No unrevoked token with this id.
    NotFound,
    /// It is the last unrevoked admin token.
    LastAdmin,
}

/// Creates an admin token if the store has none, returning it so that the caller can show it
/// once. `None` when tokens already exist (or another process created the first one meanwhile:
/// the table lock makes exactly one of several starting processes win).
pub async fn bootstrap(store: &Store) -> Result<Option<TokenSecret>, StoreError> {
    let secret = TokenSecret::generate();
    let token = NewAdminToken {
        name: tokens::BOOTSTRAP_TOKEN_NAME.to_owned(),
        role: Role::Admin,
        token_hash: secret.hash(),
    };
    let mut tx = store.begin().await?;
    tokens::lock_table(&mut tx).await?;
    if tokens::any(&mut tx).await? {
        return Ok(None);
    }
    let created = tokens::insert(&mut tx, &token).await?;
    audit::insert(
        &mut tx,
        &Provenance::SYSTEM.entry(
            "admin_token.bootstrap",
            "admin_token",
            created.admin_token_id,
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Some(secret))
}

/// Stores a new token and audits its creation.
pub async fn create(
    store: &Store,
    token: &NewAdminToken,
    by: Provenance<'_>,
) -> Result<AdminToken, StoreError> {
    let mut tx = store.begin().await?;
    let created = tokens::insert(&mut tx, token).await?;
    audit::insert(
        &mut tx,
        &by.entry("admin_token.create", "admin_token", created.admin_token_id),
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// Stores a token made on the store's host (`brevet admin mint-token`, for a lost bootstrap
/// token), audited as `admin_token.mint` by `system`.
pub async fn mint(store: &Store, token: &NewAdminToken) -> Result<AdminToken, StoreError> {
    let mut tx = store.begin().await?;
    let created = tokens::insert(&mut tx, token).await?;
    audit::insert(
        &mut tx,
        &Provenance::SYSTEM.entry("admin_token.mint", "admin_token", created.admin_token_id),
    )
    .await?;
    tx.commit().await?;
    Ok(created)
}

/// The unrevoked token with this hash, if any; records that it was used.
pub async fn authenticate(
    store: &Store,
    hash: &TokenHash,
) -> Result<Option<AdminToken>, StoreError> {
    tokens::authenticate(&mut store.db(), hash).await
}

/// Revokes a token, audited. Refuses to revoke the last unrevoked admin token, which would lock
/// every administrator out; revocations are serialised so that two cannot each leave the other
/// as the last.
pub async fn revoke(
    store: &Store,
    id: Uuid,
    by: Provenance<'_>,
) -> Result<TokenRevocation, StoreError> {
    let mut tx = store.begin().await?;
    tokens::lock_table(&mut tx).await?;
    let Some(role) = tokens::unrevoked_role(&mut tx, id).await? else {
        return Ok(TokenRevocation::NotFound);
    };
    if role == Role::Admin && tokens::count_admins(&mut tx).await? <= 1 {
        return Ok(TokenRevocation::LastAdmin);
    }
    tokens::revoke(&mut tx, id).await?;
    audit::insert(&mut tx, &by.entry("admin_token.revoke", "admin_token", id)).await?;
    tx.commit().await?;
    Ok(TokenRevocation::Revoked)
}
