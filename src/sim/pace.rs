//! An open-loop HTTP load generator for `scripts/load`: requests start on a fixed schedule (one
//! every 1/rate seconds) whether or not earlier ones have finished, and each latency is counted
//! from the request's *scheduled* start. A closed-loop tool (wrk's paced mode) waits for answers
//! before sending more, so a slow spell sends fewer requests and hides its own tail; this does not.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::Semaphore;

/// What to send.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Full URL.
    pub url: String,
    /// JSON bodies, replayed round robin.
    pub bodies: Vec<String>,
    /// Requests per second.
    pub rate: f64,
    /// How long to send.
    pub duration: Duration,
    /// Most requests in flight; a request due while all are busy waits for a slot, and that wait
    /// counts in its latency.
    pub max_in_flight: usize,
}

/// The outcome, in the shape of `scripts/load.lua`'s summary line.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Requests completed.
    pub requests: usize,
    /// Wall time from the first scheduled start to the last answer.
    pub seconds: f64,
    /// Completed requests per second.
    pub rps: f64,
    /// Median latency from the scheduled start.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Transport failures and non-2xx answers.
    pub errors: usize,
    /// Non-2xx answers.
    pub non_2xx: usize,
}

/// Runs `plan` and summarises it.
pub async fn run(plan: Plan) -> anyhow::Result<Summary> {
    anyhow::ensure!(plan.rate > 0.0, "the rate must be positive");
    anyhow::ensure!(!plan.bodies.is_empty(), "no request bodies");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.max_in_flight)
        .timeout(Duration::from_secs(10))
        .build()?;
    let interval = Duration::from_secs_f64(1.0 / plan.rate);
    let total = (plan.duration.as_secs_f64() * plan.rate).round() as usize;
    let slots = Arc::new(Semaphore::new(plan.max_in_flight.max(1)));
    let bodies: Arc<[String]> = plan.bodies.into();
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let (client, url, bodies, slots) = (
            client.clone(),
            plan.url.clone(),
            bodies.clone(),
            slots.clone(),
        );
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            let answer = client
                .post(&url)
                .header("content-type", "application/json")
                .body(bodies[i % bodies.len()].clone())
                .send()
                .await;
            let outcome = match answer {
                Ok(response) => {
                    let ok = response.status().is_success();
                    // the whole body, as a client would read it
                    let read = response.bytes().await.is_ok();
                    (ok && read, !ok)
                }
                Err(_) => (false, false),
            };
            (due.elapsed(), outcome)
        });
    }
    let mut latencies = Vec::with_capacity(total);
    let (mut errors, mut non_2xx) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        let (latency, (ok, bad_status)) = result?;
        latencies.push(latency);
        errors += usize::from(!ok);
        non_2xx += usize::from(bad_status);
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    Ok(Summary {
        requests: latencies.len(),
        seconds,
        rps: latencies.len() as f64 / seconds,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        errors,
        non_2xx,
    })
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::routing::post;

    use super::*;

    #[tokio::test]
    async fn sends_on_schedule_and_counts_from_the_scheduled_start() {
        // "ok" answers 200 after 30 ms; anything else answers 500 at once
        let app = axum::Router::new().route(
            "/",
            post(|body: String| async move {
                if body == "ok" {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    StatusCode::OK
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let summary = run(Plan {
            url,
            bodies: vec!["ok".into(), "fail".into()],
            rate: 200.0,
            duration: Duration::from_secs(1),
            // two slots for 3 requests in flight at 200/s × 30 ms: the queueing shows in latency
            max_in_flight: 2,
        })
        .await
        .unwrap();
        assert_eq!(summary.requests, 200);
        assert_eq!((summary.errors, summary.non_2xx), (100, 100));
        assert!(summary.max_ms >= 30.0, "{summary:?}");
        assert!(
            summary.p99_ms > 60.0,
            "waiting for a slot counts: {summary:?}"
        );
    }
}
