//! The application's clock: what the process evaluates its time rules against (nonce and code
//! expiry, MSO validity, challenge expiry, backoff and signing deadlines). Production reads the
//! system time; tests hold a manual clock and step it instead of sleeping. Leases shared between
//! replicas are timed by the database's clock instead (store::sql).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

/// A clock, cheap to clone; clones of a manual clock move together.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system's time.
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands at `at` until [`Clock::advance`] moves it.
    pub fn manual(at: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(Mutex::new(at))),
        }
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            Some(at) => *at.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
            None => Utc::now(),
        }
    }

    /// Now, as a `SystemTime` (for certificate checks).
    pub fn system_time(&self) -> SystemTime {
        self.now().into()
    }

    /// Moves a manual clock forward. The system clock cannot be moved: this panics, since only
    /// tests step time.
    pub fn advance(&self, by: Duration) {
        let at = self
            .manual
            .as_ref()
            .expect("only a manual clock can be advanced");
        let mut at = at.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *at = plus(*at, by);
    }

    /// `now` plus `d`.
    pub fn after(&self, d: Duration) -> DateTime<Utc> {
        plus(self.now(), d)
    }

    /// `now` minus `d`.
    pub fn before(&self, d: Duration) -> DateTime<Utc> {
        chrono::Duration::from_std(d)
            .ok()
            .and_then(|d| self.now().checked_sub_signed(d))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

/// `at` plus `d`, saturating at the end of time rather than overflowing.
pub fn plus(at: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_stepped_and_clones_follow() {
        let start = DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .unwrap()
            .to_utc();
        let clock = Clock::manual(start);
        let twin = clock.clone();
        assert_eq!(clock.now(), start);
        twin.advance(Duration::from_secs(90));
        assert_eq!(clock.now(), start + chrono::Duration::seconds(90));
        assert_eq!(
            clock.after(Duration::from_secs(10)),
            start + chrono::Duration::seconds(100)
        );
        assert_eq!(
            clock.before(Duration::from_secs(100)),
            start - chrono::Duration::seconds(10)
        );
        assert_eq!(clock.after(Duration::MAX), DateTime::<Utc>::MAX_UTC);
        let system = Clock::system();
        assert!((system.now() - Utc::now()).num_seconds().abs() < 5);
    }
}
