//! Token Status Lists (docs/STATUS_LIST.md): entries for the MSOs provisionMobileSecurityObjects
//! issues, and the tokens `brevet serve` publishes.
//!
//! One entry per MSO, not per credential: a device presents each MSO a few times before it
//! rotates its auth keys, so verifiers who compare notes cannot link the presentations of one
//! holder by a shared index. A revocation invalidates every entry of every MSO of the record.
//!
//! An entry's status is derived when a token is built (invalid when its record is revoked), so
//! there is no second copy of the record's status to drift. The revoking transaction bumps its
//! lists' generation; the publisher rebuilds a list whose token is older than its generation,
//! or half-way to expiry, under a lease so that one replica builds it and every replica serves
//! the same bytes from the store.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::Services;
use crate::mdoc::status_list::{PreparedToken, StatusBits, StatusReference, TokenClaims};
use crate::service::wallet::context::StatusListSettings;
use crate::store::status_lists::{self, DueList, Entry, NewToken};
use crate::store::StoreError;

/// Publication settings.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The public base URL of the lists.
    pub base_url: String,
    /// `ttl` of each token.
    pub ttl: Duration,
    /// `exp` − `iat` of each token.
    pub validity: Duration,
}

impl Publication {
    /// The settings in `config`, with the base URL `brevet serve` resolved.
    pub fn from_config(config: &crate::config::Config, base_url: String) -> Self {
        Self {
            base_url,
            ttl: Duration::from_secs(config.status_list.ttl_secs),
            validity: Duration::from_secs(config.status_list.validity_secs),
        }
    }
}

/// The entries `count` MSOs of `doc_type` name, with their references; `None` when its MSOs
/// name no status list. Allocated in a statement of its own before anything is signed.
pub async fn allocate(
    s: &Services,
    doc_type: &str,
    count: usize,
) -> Result<Option<Vec<(Entry, StatusReference)>>, AllocateError> {
    let settings = &s.wallet.settings;
    let Some(base) = settings.status_list_base(doc_type) else {
        return Ok(None);
    };
    let keys = s.wallet.keys();
    let scope = keys.status_list_scope(doc_type).to_owned();
    // An MSO naming a list nobody can sign would point verifiers at nothing.
    if keys.status_list_signer(&scope).is_none() {
        return Err(AllocateError::NoSigner);
    }
    let entries = s.wallet.status_entries.take(s, &scope, count).await?;
    Ok(Some(
        entries
            .into_iter()
            .map(|entry| {
                let reference = StatusReference {
                    idx: u64::try_from(entry.index).unwrap_or_default(),
                    uri: StatusListSettings::uri(base, entry.list_id),
                };
                (entry, reference)
            })
            .collect(),
    ))
}

/// Entries this process reserved from the store and hands out from memory, per scope: one
/// statement per `status_list.reserve_entries` entries instead of one per call, so that calls do
/// not queue on the list's row. Entries held when the process stops are never used.
#[derive(Default)]
pub struct Reservations(std::sync::Mutex<std::collections::HashMap<String, Vec<Entry>>>);

impl Reservations {
    fn take_reserved(&self, scope: &str, out: &mut Vec<Entry>, count: usize) {
        let mut blocks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(block) = blocks.get_mut(scope) {
            let take = block.len().min(count - out.len());
            out.extend(block.drain(..take));
        }
    }

    /// `count` entries of `scope`, from the block in hand and, when it runs out, a new one.
    async fn take(
        &self,
        s: &Services,
        scope: &str,
        count: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let settings = &s.wallet.settings.status_lists;
        let mut out = Vec::with_capacity(count);
        self.take_reserved(scope, &mut out, count);
        while out.len() < count {
            let want = u32::try_from(count - out.len())
                .unwrap_or(u32::MAX)
                .max(settings.reserve_entries);
            let reserved =
                status_lists::allocate(&mut s.store.db(), scope, want, settings.list_size).await?;
            if reserved.is_empty() {
                break;
            }
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(scope.to_owned(), reserved);
            self.take_reserved(scope, &mut out, count);
        }
        Ok(out)
    }
}

/// Why entries could not be handed out.
#[derive(Debug, thiserror::Error)]
pub enum AllocateError {
    /// Status lists are on but the key directory has no status-list signer.
    #[error("no status-list signer: run `brevet keys rotate-status-list`")]
    NoSigner,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a token could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No signer for the list's key directory.
    #[error("status list {0}: no status-list signer for its key directory; run `brevet keys rotate-status-list`")]
    NoSigner(i64),
    /// The signer failed (an HSM away).
    #[error("status list {0}: signing failed: {1}")]
    Signer(i64, String),
}

/// Builds, signs and stores one list's token. Returns its size in bytes.
async fn build(
    s: &Services,
    publication: &Publication,
    owner: &str,
    list: &DueList,
) -> Result<Option<usize>, PublishError> {
    // Read after the claim, so the entries are at least as new as `list.generation`.
    let invalid = status_lists::invalid_indexes(&mut s.store.db(), list.list_id).await?;
    let mut bits = StatusBits::new(u64::try_from(list.size).unwrap_or_default());
    for index in invalid {
        bits.set_invalid(u64::try_from(index).unwrap_or(u64::MAX));
    }
    let keys = s.wallet.keys();
    let signer = keys
        .status_list_signer(&list.scope)
        .ok_or(PublishError::NoSigner(list.list_id))?;
    let issued_at = s.clock.now();
    // Never past the signer's certificate: a token must verify for as long as it claims to.
    let signer_until: DateTime<Utc> = signer
        .certificate
        .tbs_certificate
        .validity
        .not_after
        .to_system_time()
        .into();
    let expires_at = crate::clock::plus(issued_at, publication.validity).min(signer_until);
    let claims = TokenClaims {
        subject: StatusListSettings::uri(&publication.base_url, list.list_id),
        issued_at,
        expires_at,
        ttl_secs: publication.ttl.as_secs(),
    };
    let certificate = crate::pki::certs::to_der(&signer.certificate)
        .map_err(|e| PublishError::Signer(list.list_id, e.to_string()))?;
    let prepared = PreparedToken::new(&claims, &bits, certificate);
    let signature = signer
        .signer
        .sign(&prepared.to_be_signed())
        .map_err(|e| PublishError::Signer(list.list_id, e.to_string()))?;
    let token = prepared.complete(&signature);
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&token)[..16]));
    let stored = status_lists::publish(
        &mut s.store.db(),
        list.list_id,
        owner,
        &NewToken {
            token: &token,
            etag: &etag,
            generation: list.generation,
            issued_at,
            expires_at,
        },
    )
    .await?;
    Ok(stored.then_some(token.len()))
}

/// How long a replica holds a list while it builds its token.
const BUILD_LEASE: Duration = Duration::from_secs(30);

/// One round: builds the token of every list that needs one and that no other replica holds.
/// Returns how many were published.
pub async fn publish_due(
    s: &Services,
    publication: &Publication,
    owner: &str,
) -> Result<usize, PublishError> {
    // A token is rebuilt when half of its validity has passed.
    let refresh_before = s.clock.after(publication.validity / 2);
    let due = status_lists::due(&mut s.store.db(), refresh_before, 100).await?;
    let mut published = 0;
    for list_id in due {
        let claimed = status_lists::claim(
            &mut s.store.db(),
            list_id,
            owner,
            BUILD_LEASE,
            refresh_before,
        )
        .await?;
        let Some(list) = claimed else {
            continue;
        };
        let started = std::time::Instant::now();
        if let Some(bytes) = build(s, publication, owner, &list).await? {
            published += 1;
            tracing::info!(
                list = list.list_id,
                generation = list.generation,
                bytes,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "status list token published"
            );
        }
    }
    Ok(published)
}

/// Publishes due lists every `interval` until `stop`; revocations within one interval share one
/// token. A failure is logged and retried next round (the list stays due in the store, so a
/// crash loses nothing either).
pub async fn keep_publishing(
    s: Services,
    publication: Publication,
    owner: String,
    interval: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        if let Err(error) = publish_due(&s, &publication, &owner).await {
            tracing::warn!(%error, "status list publication failed; retrying");
        }
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}
