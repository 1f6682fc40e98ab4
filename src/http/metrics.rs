//! Prometheus metrics of the HTTP server, exposed at `/metrics` in the OpenMetrics text format.
//! Each process (and each test app) has its own registry, so nothing is global.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of one request outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// Route template (`/admin/v1/tokens`), never the raw path, to bound cardinality.
    pub route: String,
    /// Response status code.
    pub status: u16,
}

/// Labels of one route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// HTTP method.
    pub method: String,
    /// Route template.
    pub route: String,
}

/// Labels of an outbox state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// The state: an outbox job's (pending, done, dead) or a certificate process's.
    pub state: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The metrics Brevet records, and the registry they are exported from.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: HistogramFamily,
    outbox_jobs: Family<StateLabels, Gauge>,
    cert_processes: Family<StateLabels, Gauge>,
    msos_issued: Counter,
    outbox_retrying: Gauge,
    outbox_oldest_pending_age: Gauge,
    notifications_configured: Gauge,
    certificate_expiry: Family<CertificateLabels, Gauge>,
    status_lists: Family<StateLabels, Gauge>,
    status_list_token_expiry: Gauge,
}

/// Labels of one watched certificate.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertificateLabels {
    /// `iaca`, `ds`, `identity`, `hybrid`, `device_ca` or `tls`.
    pub role: String,
    /// Its number or name.
    pub id: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~8 s
    Histogram::new(exponential_buckets(0.0005, 2.0, 15))
}

impl Metrics {
    /// A fresh registry with Brevet's metrics in it.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("brevet");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        let durations: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from receiving a request to having its response",
            durations.clone(),
        );
        let outbox_jobs = Family::<StateLabels, Gauge>::default();
        registry.register(
            "outbox_jobs",
            "Outbox jobs by state, read from the store at scrape time",
            outbox_jobs.clone(),
        );
        let cert_processes = Family::<StateLabels, Gauge>::default();
        registry.register(
            "cert_processes",
            "Chrome certificate-provisioning processes by state, read from the store at scrape time",
            cert_processes.clone(),
        );
        let msos_issued = Counter::default();
        registry.register(
            "msos_issued",
            "Mobile security objects signed for devices (provisionMobileSecurityObjects)",
            msos_issued.clone(),
        );
        let outbox_retrying = Gauge::default();
        registry.register(
            "outbox_retrying_jobs",
            "Pending notifications whose last delivery attempt failed, read from the store at scrape time",
            outbox_retrying.clone(),
        );
        let outbox_oldest_pending_age = Gauge::default();
        registry.register(
            "outbox_oldest_pending_age_seconds",
            "Age of the oldest notification not yet delivered (0 when none is pending)",
            outbox_oldest_pending_age.clone(),
        );
        let notifications_configured = Gauge::default();
        registry.register(
            "notifications_configured",
            "1 when google.base_url is set; 0 means notifications are queued but never delivered",
            notifications_configured.clone(),
        );
        let certificate_expiry = Family::<CertificateLabels, Gauge>::default();
        registry.register(
            "certificate_expiry_seconds",
            "Seconds until each certificate in use expires (negative once expired)",
            certificate_expiry.clone(),
        );
        let status_lists = Family::<StateLabels, Gauge>::default();
        registry.register(
            "status_lists",
            "Status lists by whether their published token shows their entries (current) or not yet (stale), read from the store at scrape time",
            status_lists.clone(),
        );
        let status_list_token_expiry = Gauge::default();
        registry.register(
            "status_list_token_expiry_seconds",
            "Seconds until the first published status list token expires (negative once expired; tokens are rebuilt at half-life, so a falling value means publication is failing)",
            status_list_token_expiry.clone(),
        );
        Self {
            status_lists,
            status_list_token_expiry,
            certificate_expiry,
            registry,
            requests,
            durations,
            outbox_jobs,
            cert_processes,
            msos_issued,
            outbox_retrying,
            outbox_oldest_pending_age,
            notifications_configured,
        }
    }

    /// Records one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let route_labels = RouteLabels {
            method: method.to_owned(),
            route: route.to_owned(),
        };
        self.durations.get_or_create(&route_labels).observe(seconds);
        let labels = RequestLabels {
            method: route_labels.method,
            route: route_labels.route,
            status,
        };
        self.requests.get_or_create(&labels).inc();
    }

    /// Sets the outbox gauges (dead jobs need an operator).
    pub fn set_outbox_counts(&self, counts: &[(String, i64)]) {
        for state in ["pending", "done", "dead"] {
            let count = counts
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            self.outbox_jobs
                .get_or_create(&StateLabels {
                    state: state.to_owned(),
                })
                .set(count);
        }
    }

    /// Counts MSOs handed to a device.
    pub fn count_msos(&self, n: usize) {
        self.msos_issued.inc_by(n as u64);
    }

    /// Sets the outbox backlog gauges from the store's [`Backlog`](crate::store::outbox::Backlog)
    /// as of `now`.
    pub fn set_outbox_backlog(
        &self,
        backlog: &crate::store::outbox::Backlog,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        self.outbox_retrying.set(backlog.retrying);
        let age = backlog
            .oldest_pending
            .map_or(0, |queued| (now - queued).num_seconds().max(0));
        self.outbox_oldest_pending_age.set(age);
    }

    /// Sets the seconds-to-expiry gauge of every watched certificate.
    pub fn set_certificate_expiry(
        &self,
        watched: &[crate::pki::expiry::Watched],
        now: std::time::SystemTime,
    ) {
        for cert in watched {
            self.certificate_expiry
                .get_or_create(&CertificateLabels {
                    role: cert.role.to_owned(),
                    id: cert.id.clone(),
                })
                .set(cert.seconds_left(now));
        }
    }

    /// Whether notifications have somewhere to go.
    pub fn set_notifications_configured(&self, configured: bool) {
        self.notifications_configured.set(i64::from(configured));
    }

    /// Sets the certificate-provisioning gauges (failing or long-signing processes need a look).
    pub fn set_cert_process_counts(&self, counts: &[(String, i64)]) {
        for state in crate::store::cert_processes::STATES {
            let count = counts
                .iter()
                .find(|(s, _)| s == state.as_str())
                .map_or(0, |(_, n)| *n);
            self.cert_processes
                .get_or_create(&StateLabels {
                    state: state.as_str().to_owned(),
                })
                .set(count);
        }
    }

    /// Sets the status list gauges from the lists in the store.
    pub fn set_status_lists(
        &self,
        lists: &[crate::store::status_lists::ListSummary],
        now: chrono::DateTime<chrono::Utc>,
    ) {
        let current = lists.iter().filter(|l| l.current).count();
        for (state, count) in [("current", current), ("stale", lists.len() - current)] {
            self.status_lists
                .get_or_create(&StateLabels {
                    state: state.to_owned(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        if let Some(first) = lists.iter().filter_map(|l| l.token_expires_at).min() {
            self.status_list_token_expiry
                .set((first - now).num_seconds());
        }
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
