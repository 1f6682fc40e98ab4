//! What the worker tells an operator about certificate provisioning, at `/metrics` on its ops
//! listener (`worker.ops_listen`): every call to Chrome Management, Pub/Sub and the CAs by
//! outcome and latency, retries by step, token failures, held Pub/Sub messages, and — read from
//! the store at scrape time, so that every replica reports the same — processes by state and the
//! age of the oldest unfinished one.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::store::{cert_processes, Store, StoreError};

/// One call's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    service: &'static str,
    call: &'static str,
    outcome: &'static str,
}

/// One call kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallKind {
    service: &'static str,
    call: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: &'static str,
}

/// An outbox delivery attempt's outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `delivered`, `retrying`, `dead` or `lost_lease`.
    pub outcome: &'static str,
}

/// The counter of notification attempts by outcome, registered in `registry`: a process that
/// dispatches notifications (the worker, or serve with `outbox.dispatch_in_serve`) exports it.
pub fn register_deliveries(registry: &mut Registry) -> Family<OutcomeLabels, Counter> {
    let deliveries = Family::<OutcomeLabels, Counter>::default();
    registry.register(
        "outbox_deliveries",
        "Attempts to deliver a notification to Google, by outcome (delivered, retrying, dead, lost_lease)",
        deliveries.clone(),
    );
    deliveries
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

type Durations = Family<CallKind, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms .. ~65 s: Google's calls take tens of milliseconds, a slow CA seconds.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The adapter's metrics and their registry (one per worker process; nothing global).
pub struct AdapterMetrics {
    deliveries: Family<OutcomeLabels, Counter>,
    registry: Registry,
    calls: Family<CallLabels, Counter>,
    durations: Durations,
    retries: Family<StepLabels, Counter>,
    token_failures: Counter,
    held: Gauge,
    processes: Family<StateLabels, Gauge>,
    oldest: Gauge,
}

impl crate::outbox::DeliveryObserver for AdapterMetrics {
    fn attempted(&self, step: &crate::outbox::Step) {
        self.deliveries
            .get_or_create(&OutcomeLabels {
                outcome: step.outcome(),
            })
            .inc();
    }
}

impl Default for AdapterMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AdapterMetrics {
    /// A fresh registry.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("brevet");
        let calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "certprov_calls",
            "Calls to Chrome Management, Pub/Sub and the CAs, by outcome (ok, transient, refused, not_found)",
            calls.clone(),
        );
        let durations: Durations = Family::new_with_constructor(latency_histogram);
        registry.register(
            "certprov_call_duration_seconds",
            "Time a call to Chrome Management, Pub/Sub or a CA took",
            durations.clone(),
        );
        let retries = Family::<StepLabels, Counter>::default();
        registry.register(
            "certprov_retries",
            "Transient failures retried, by the step they happened in",
            retries.clone(),
        );
        let token_failures = Counter::default();
        registry.register(
            "certprov_token_failures",
            "Access tokens Google would not grant, or revoked tokens (401)",
            token_failures.clone(),
        );
        let held = Gauge::default();
        registry.register(
            "certprov_held_messages",
            "Pub/Sub messages this worker holds until their processes finish",
            held.clone(),
        );
        let processes = Family::<StateLabels, Gauge>::default();
        registry.register(
            "cert_processes",
            "Certificate provisioning processes by state, read from the store at scrape time",
            processes.clone(),
        );
        let oldest = Gauge::default();
        registry.register(
            "cert_process_oldest_unfinished_seconds",
            "Age of the oldest process not yet done, failed or skipped (0 when there is none)",
            oldest.clone(),
        );
        let deliveries = register_deliveries(&mut registry);
        Self {
            deliveries,
            registry,
            calls,
            durations,
            retries,
            token_failures,
            held,
            processes,
            oldest,
        }
    }

    /// Starts timing a call; [`CallTimer::done`] records it.
    pub fn start(&self, service: &'static str, call: &'static str) -> CallTimer<'_> {
        CallTimer {
            metrics: self,
            service,
            call,
            started: Instant::now(),
        }
    }

    /// A transient failure in `step` that will be retried.
    pub fn retried(&self, step: &'static str) {
        self.retries.get_or_create(&StepLabels { step }).inc();
    }

    /// A token Google would not grant, or one it refused with 401.
    pub fn token_failed(&self) {
        self.token_failures.inc();
    }

    /// How many Pub/Sub messages are held.
    pub fn set_held(&self, held: usize) {
        self.held.set(i64::try_from(held).unwrap_or(i64::MAX));
    }

    /// The registry in the OpenMetrics text format, with the store's counts read now.
    pub async fn encode(&self, store: &Store) -> Result<String, StoreError> {
        let counts = cert_processes::count_by_state(&mut store.db()).await?;
        for state in cert_processes::STATES {
            let count = counts
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            self.processes
                .get_or_create(&StateLabels {
                    state: state.as_str(),
                })
                .set(count);
        }
        let oldest = cert_processes::oldest_unfinished(&mut store.db()).await?;
        let age = oldest.map_or(0, |at| (chrono::Utc::now() - at).num_seconds().max(0));
        self.oldest.set(age);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| StoreError::Corrupt(format!("metrics encoding: {e}")))?;
        Ok(out)
    }
}

/// A call being timed.
pub struct CallTimer<'a> {
    metrics: &'a AdapterMetrics,
    service: &'static str,
    call: &'static str,
    started: Instant,
}

impl CallTimer<'_> {
    /// Records the call's outcome and how long it took.
    pub fn done(self, outcome: &'static str) {
        let kind = CallKind {
            service: self.service,
            call: self.call,
        };
        self.metrics
            .durations
            .get_or_create(&kind)
            .observe(self.started.elapsed().as_secs_f64());
        self.metrics
            .calls
            .get_or_create(&CallLabels {
                service: self.service,
                call: self.call,
                outcome,
            })
            .inc();
    }
}
