//! The dashboard: what needs attention, in counts, and the certificates in use with the days
//! left before each expires.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::page::{page, ConsoleError};
use super::session::Staff;
use crate::http::AppState;
use crate::store::{cert_processes, credentials, outbox, proofings};

fn count(counts: &[(String, i64)], key: &str) -> i64 {
    counts.iter().find(|(k, _)| k == key).map_or(0, |(_, n)| *n)
}

/// `GET /console/dashboard` (viewer).
pub async fn show(staff: Staff, State(state): State<AppState>) -> Result<Response, ConsoleError> {
    let mut db = state.store().db();
    let records = credentials::count_by_status(&mut db).await?;
    let proofing = proofings::count_by_status(&mut db).await?;
    let jobs = outbox::count_by_state(&mut db).await?;
    let processes = cert_processes::count_by_state(&mut db).await?;
    let certificates = state.certificates_in_use();
    let now = state.services.clock.system_time();
    let days_left = |not_after: std::time::SystemTime| match not_after.duration_since(now) {
        Ok(left) => (left.as_secs() / 86_400).to_string(),
        Err(_) => "expired".to_owned(),
    };
    let body = html! {
        @if !state.notifications_configured {
            p.warning role="status" { (crate::http::ops::NOTIFICATIONS_DISABLED) }
        }
        div.cards {
            section.card aria-labelledby="records-h" {
                h2 #records-h { "Records" }
                dl {
                    @for status in ["active", "revoked"] {
                        dt { (status) } dd data-count=(format!("records-{status}")) { (count(&records, status)) }
                    }
                }
                a href="/console/records" { "All records" }
            }
            section.card aria-labelledby="proofings-h" {
                h2 #proofings-h { "Proofings" }
                dl {
                    dt { "waiting for review" } dd data-count="proofings-pending" { (count(&proofing, "pending")) }
                    dt { "challenged" } dd { (count(&proofing, "challenged")) }
                }
                a href="/console/proofings" { "Review queue" }
            }
            section.card aria-labelledby="notifications-h" {
                h2 #notifications-h { "Notifications to Google" }
                dl {
                    dt { "pending" } dd data-count="outbox-pending" { (count(&jobs, "pending")) }
                    dt { "dead" } dd data-count="outbox-dead" { (count(&jobs, "dead")) }
                }
                a href="/console/notifications" { "Notifications" }
            }
            section.card aria-labelledby="certprov-h" {
                h2 #certprov-h { "Certificate provisioning" }
                dl {
                    @for (state, n) in &processes {
                        dt { (state) } dd { (n) }
                    }
                    @if processes.is_empty() { dt { "processes" } dd { "0" } }
                }
                a href="/console/certificates" { "Processes" }
            }
        }
        h2 { "Keys and certificates" }
        table {
            thead { tr { th scope="col" { "Role" } th scope="col" { "Which" } th scope="col" { "Expires" } th scope="col" { "Days left" } } }
            tbody {
                @for watched in &certificates {
                    tr {
                        td { (watched.role) }
                        td { (watched.id) }
                        td { (super::page::when(watched.not_after.into())) }
                        td { (days_left(watched.not_after)) }
                    }
                }
            }
        }
    };
    Ok(page(&staff, "Dashboard", body))
}
