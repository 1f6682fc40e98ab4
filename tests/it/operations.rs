//! The sample alert rules (examples/prometheus-alerts.yml) name only metrics Brevet exports.

use std::collections::BTreeSet;

use yaml_rust2::YamlLoader;

/// Every sample name the OpenMetrics text can hold, from its `# TYPE` lines.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').unwrap();
        match kind {
            "counter" => {
                names.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

#[tokio::test]
async fn the_sample_alerts_name_only_metrics_that_exist() {
    let mut names = exported(&brevet::http::metrics::Metrics::new().encode().unwrap());
    let url = brevet::config::DatabaseUrl::parse("sqlite::memory:").unwrap();
    let store = brevet::store::connect(&url, 1).await.unwrap();
    let worker = brevet::certprov::metrics::AdapterMetrics::new();
    names.extend(exported(&worker.encode(&store).await.unwrap()));
    for expected in [
        "brevet_msos_issued_total",
        "brevet_outbox_oldest_pending_age_seconds",
        "brevet_outbox_retrying_jobs",
        "brevet_notifications_configured",
    ] {
        assert!(
            names.contains(expected),
            "{expected} not exported: {names:?}"
        );
    }

    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/prometheus-alerts.yml");
    let doc = &YamlLoader::load_from_str(&std::fs::read_to_string(path).unwrap()).unwrap()[0];
    let mut alerts = 0;
    for group in doc["groups"].as_vec().unwrap() {
        for rule in group["rules"].as_vec().unwrap() {
            let alert = rule["alert"].as_str().unwrap();
            let expr = rule["expr"].as_str().unwrap();
            assert!(
                rule["annotations"]["summary"].as_str().is_some(),
                "{alert} has no summary"
            );
            let used: Vec<&str> = expr
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|word| word.starts_with("brevet_"))
                .collect();
            assert!(
                !used.is_empty() || expr.starts_with("up{"),
                "{alert}: {expr}"
            );
            for metric in used {
                assert!(
                    names.contains(metric),
                    "{alert} uses {metric}, which Brevet does not export"
                );
            }
            alerts += 1;
        }
    }
    assert!(alerts >= 10, "{alerts}");
}
