//! Intake of new-process messages (spec §6). Pull: a small REST client (pull, acknowledge,
//! modifyAckDeadline) whose base is `http://$PUBSUB_EMULATOR_HOST` when that is set, as Google's
//! client libraries do. Every message only names a process; it is recorded in the store and held
//! (its ack deadline extended) until the process is finished, then acknowledged. A message for a
//! process already finished, or one that names no process, is acknowledged at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::auth::{send_with_token, AuthError, TokenSource};
use super::config::PUBSUB_SCOPE;
use super::metrics::AdapterMetrics;
use super::wire::{ProcessCreated, PubsubMessage, PullResponse, ReceivedMessage};
use crate::clock::Clock;
use crate::store::{cert_processes, SharedStore, Store, StoreError};

/// Why a Pub/Sub call or the intake's bookkeeping failed (all retried on the next round).
#[derive(Debug, thiserror::Error)]
pub enum PubSubError {
    /// No token for the call.
    #[error("Pub/Sub credentials: {0}")]
    Auth(#[from] AuthError),
    /// The call did not complete.
    #[error("Pub/Sub {verb}: {source}")]
    Http {
        /// pull, acknowledge or modifyAckDeadline.
        verb: String,
        /// The HTTP client's error (without the URL).
        #[source]
        source: reqwest::Error,
    },
    /// Pub/Sub answered with an error status.
    #[error("Pub/Sub {verb} answered {status}")]
    Status {
        /// The call.
        verb: String,
        /// Its answer.
        status: reqwest::StatusCode,
    },
    /// The answer is not what the API defines.
    #[error("Pub/Sub {verb} answer unreadable: {detail}")]
    Unreadable {
        /// The call.
        verb: String,
        /// What was wrong.
        detail: String,
    },
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A Pub/Sub subscription, over REST.
#[derive(Clone)]
pub struct Subscription {
    http: reqwest::Client,
    base: String,
    name: String,
    tokens: Arc<dyn TokenSource>,
    metrics: Arc<AdapterMetrics>,
}

/// The base URL and whether it is the emulator, from `endpoint` and `PUBSUB_EMULATOR_HOST`.
pub fn endpoint(configured: &str, emulator_host: Option<&str>) -> (String, bool) {
    match emulator_host.filter(|h| !h.is_empty()) {
        Some(host) => (format!("http://{host}/"), true),
        None => (configured.to_owned(), false),
    }
}

impl Subscription {
    /// `name` is `projects/{p}/subscriptions/{s}`.
    pub fn new(
        base: &str,
        name: &str,
        tokens: Arc<dyn TokenSource>,
        timeout: Duration,
        metrics: Arc<AdapterMetrics>,
    ) -> anyhow::Result<Self> {
        let parts: Vec<&str> = name.split('/').collect();
        if parts.len() != 4 || parts[0] != "projects" || parts[2] != "subscriptions" {
            anyhow::bail!(
                "{name:?} is not of the form projects/PROJECT/subscriptions/SUBSCRIPTION"
            );
        }
        Ok(Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .use_rustls_tls()
                .build()?,
            base: format!("{}/", base.trim_end_matches('/')),
            name: name.to_owned(),
            tokens,
            metrics,
        })
    }

    /// One call, counted and timed.
    async fn post(
        &self,
        verb: &'static str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, PubSubError> {
        let timer = self.metrics.start("pubsub", verb);
        let result = self.send(verb, body).await;
        timer.done(match &result {
            Ok(_) => "ok",
            Err(PubSubError::Status { status, .. })
                if status.is_client_error() && status.as_u16() != 429 && status.as_u16() != 408 =>
            {
                "refused"
            }
            Err(PubSubError::Auth(AuthError::Refused(_))) => "refused",
            Err(_) => "transient",
        });
        result
    }

    async fn send(
        &self,
        verb: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, PubSubError> {
        let http = |e: reqwest::Error| PubSubError::Http {
            verb: verb.to_owned(),
            source: e.without_url(),
        };
        let build = || {
            self.http
                .post(format!("{}v1/{}:{verb}", self.base, self.name))
                .json(&body)
        };
        let response = send_with_token(self.tokens.as_ref(), PUBSUB_SCOPE, build, || {
            self.metrics.token_failed()
        })
        .await?
        .map_err(http)?;
        let status = response.status();
        if !status.is_success() {
            return Err(PubSubError::Status {
                verb: verb.to_owned(),
                status,
            });
        }
        response.json().await.map_err(|e| PubSubError::Unreadable {
            verb: verb.to_owned(),
            detail: e.without_url().to_string(),
        })
    }

    /// Up to `max` messages (possibly none, after the server's bounded wait).
    pub async fn pull(&self, max: u32) -> Result<Vec<ReceivedMessage>, PubSubError> {
        let answer = self.post("pull", json!({ "maxMessages": max })).await?;
        let parsed: PullResponse =
            serde_json::from_value(answer).map_err(|e| PubSubError::Unreadable {
                verb: "pull".into(),
                detail: e.to_string(),
            })?;
        Ok(parsed.received_messages)
    }

    /// Acknowledges `ack_ids`.
    pub async fn acknowledge(&self, ack_ids: &[String]) -> Result<(), PubSubError> {
        if ack_ids.is_empty() {
            return Ok(());
        }
        self.post("acknowledge", json!({ "ackIds": ack_ids }))
            .await?;
        Ok(())
    }

    /// Sets the ack deadline of `ack_ids` to `seconds` from now.
    pub async fn modify_ack_deadline(
        &self,
        ack_ids: &[String],
        seconds: u32,
    ) -> Result<(), PubSubError> {
        if ack_ids.is_empty() {
            return Ok(());
        }
        self.post(
            "modifyAckDeadline",
            json!({ "ackIds": ack_ids, "ackDeadlineSeconds": seconds }),
        )
        .await?;
        Ok(())
    }
}

/// Records the process a message names. `Ok(None)`: the message names no process (it can only
/// be acknowledged); `Ok(Some((name, final)))` otherwise.
pub async fn record(
    store: &Store,
    clock: &Clock,
    message: &PubsubMessage,
) -> Result<Option<(String, bool)>, StoreError> {
    let Some(event) = message
        .data
        .as_ref()
        .and_then(|data| ProcessCreated::decode(&data.0))
    else {
        tracing::warn!(
            message_id = message.message_id.as_deref().unwrap_or(""),
            "Pub/Sub message names no certificate provisioning process; acknowledged and dropped"
        );
        return Ok(None);
    };
    let name = event.name();
    let stored =
        cert_processes::receive(&mut store.db(), &name, &event.customer_id, clock.now()).await?;
    Ok(Some((name, stored.state.is_final())))
}

/// Pulls messages and holds them until their processes are finished.
pub struct Intake {
    store: SharedStore,
    clock: Clock,
    subscription: Subscription,
    max_messages: u32,
    ack_deadline: u32,
    /// ack id → (process, when its deadline must next be extended)
    held: HashMap<String, (String, Instant)>,
}

impl Intake {
    /// Intake from `subscription` into `store`.
    pub fn new(
        store: SharedStore,
        subscription: Subscription,
        max_messages: u32,
        ack_deadline: u32,
    ) -> Self {
        Self {
            store,
            clock: Clock::system(),
            subscription,
            max_messages,
            ack_deadline,
            held: HashMap::new(),
        }
    }

    /// The same intake stamping processes with `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Messages held now (for tests and metrics).
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// When a deadline set at `now` must be extended again: at two thirds of it.
    fn renew_at(&self, now: Instant) -> Instant {
        now + Duration::from_secs(u64::from(self.ack_deadline) * 2 / 3)
    }

    /// One pull, then the held messages' upkeep. Returns how many messages arrived.
    pub async fn run_once(&mut self) -> Result<usize, PubSubError> {
        let messages = self.subscription.pull(self.max_messages).await?;
        let count = messages.len();
        let (mut ack, mut hold) = (Vec::new(), Vec::new());
        for received in messages {
            match record(&self.store, &self.clock, &received.message).await {
                Ok(None) | Ok(Some((_, true))) => ack.push(received.ack_id),
                Ok(Some((name, false))) => {
                    tracing::info!(process = %name, "certificate provisioning process announced");
                    hold.push(received.ack_id.clone());
                    self.held
                        .insert(received.ack_id, (name, self.renew_at(Instant::now())));
                }
                // Not recorded: let it come back.
                Err(e) => {
                    tracing::error!(error = %e, "cannot record a certificate provisioning process")
                }
            }
        }
        self.subscription.acknowledge(&ack).await?;
        self.subscription
            .modify_ack_deadline(&hold, self.ack_deadline)
            .await?;
        self.upkeep().await?;
        Ok(count)
    }

    /// Acknowledges messages whose processes are finished; extends the others' deadlines when
    /// due.
    pub async fn upkeep(&mut self) -> Result<(), PubSubError> {
        self.upkeep_at(Instant::now()).await
    }

    /// [`Self::upkeep`] as if the time were `now` (tests move it forward instead of sleeping).
    pub async fn upkeep_at(&mut self, now: Instant) -> Result<(), PubSubError> {
        let (mut ack, mut extend) = (Vec::new(), Vec::new());
        for (ack_id, (name, renew)) in &self.held {
            match cert_processes::get(&mut self.store.db(), name).await {
                Ok(Some(p)) if p.state.is_final() => ack.push(ack_id.clone()),
                Ok(_) if *renew <= now => extend.push(ack_id.clone()),
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.subscription.acknowledge(&ack).await?;
        for id in &ack {
            self.held.remove(id);
        }
        self.subscription
            .modify_ack_deadline(&extend, self.ack_deadline)
            .await?;
        let renew = self.renew_at(now);
        for id in &extend {
            if let Some(entry) = self.held.get_mut(id) {
                entry.1 = renew;
            }
        }
        self.subscription.metrics.set_held(self.held.len());
        Ok(())
    }

    /// Pulls until `stop`, `pause` apart when nothing came; after failures the wait doubles
    /// from `pause` up to a minute, and the log says why each time.
    pub async fn run(mut self, pause: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let backoff = crate::outbox::RetryPolicy {
            max_attempts: u32::MAX,
            base: pause,
            max: Duration::from_secs(60),
        };
        let mut failures = 0u32;
        loop {
            let wait = match self.run_once().await {
                Ok(count) => {
                    if failures > 0 {
                        tracing::info!(failures, "Pub/Sub intake recovered");
                        failures = 0;
                    }
                    if count == 0 {
                        pause
                    } else {
                        Duration::ZERO
                    }
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = backoff.ceiling(failures);
                    tracing::warn!(error = %crate::telemetry::error_chain(&e), failures, retry_in_ms = wait.as_millis() as u64, "Pub/Sub intake failed");
                    wait
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::endpoint;

    #[test]
    fn the_emulator_variable_wins() {
        let google = "https://pubsub.googleapis.com/";
        assert_eq!(endpoint(google, None), (google.to_owned(), false));
        assert_eq!(endpoint(google, Some("")), (google.to_owned(), false));
        assert_eq!(
            endpoint(google, Some("localhost:8085")),
            ("http://localhost:8085/".to_owned(), true)
        );
    }
}
