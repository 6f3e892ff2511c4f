//! `--metrics-addr HOST:PORT` of `ehstore process` and `ehstore status --watch`: Prometheus
//! text at `http://HOST:PORT/metrics`, served by `metrics-exporter-prometheus` from the values
//! last recorded, so a scrape never waits on the hub or the store. It carries the client's
//! metrics (`eventhubs_client::telemetry`) and, from `status --watch`, the lag of every
//! partition, collected in the background at the watch interval:
//!
//! | name (Prometheus) | unit | labels | what |
//! |---|---|---|---|
//! | `messaging_eventhubs_consumer_lag` | events | hub, group, partition | retained events after the checkpoint |
//! | `messaging_eventhubs_consumer_lag_time_seconds` | seconds | hub, group, partition | age of the first unprocessed event |
//! | `messaging_eventhubs_consumer_lost_to_retention` | events | hub, group, partition | events gone unprocessed |
//! | `messaging_eventhubs_consumer_consume_rate` | events/s | hub, group, partition | checkpointed events per second |
//! | `messaging_eventhubs_consumer_ingest_rate` | events/s | hub, group, partition | enqueued events per second |
//! | `messaging_eventhubs_consumer_state` | 1 or 0 | hub, group, partition, `verdict` | 1 for the partition's current verdict |

use std::collections::BTreeMap;
use std::net::SocketAddr;

use eventhubs_client::telemetry::{GROUP, HUB, PARTITION};
use eventhubs_store_core::{Error, ErrorKind, Result};

use super::lag::LagState;
use super::status::ScopeStatus;
use super::watch::Judged;

const LAG: &str = "messaging.eventhubs.consumer.lag";
const LAG_TIME: &str = "messaging.eventhubs.consumer.lag_time_seconds";
const LOST: &str = "messaging.eventhubs.consumer.lost_to_retention";
const CONSUME_RATE: &str = "messaging.eventhubs.consumer.consume_rate";
const INGEST_RATE: &str = "messaging.eventhubs.consumer.ingest_rate";
const STATE: &str = "messaging.eventhubs.consumer.state";

const VERDICTS: [LagState; 7] = [
    LagState::CaughtUp,
    LagState::Behind,
    LagState::CatchingUp,
    LagState::Stalled,
    LagState::UnownedWithLag,
    LagState::Rewound,
    LagState::LostToRetention,
];

/// Serves Prometheus text on `addr` from now on.
///
/// # Errors
/// `Unavailable` when `addr` cannot be listened on.
pub fn serve(addr: SocketAddr) -> Result<()> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(addr)
        .install()
        .map_err(|e| Error::new(ErrorKind::Unavailable, format!("--metrics-addr {addr}: {e}")))?;
    eventhubs_client::telemetry::describe();
    metrics::describe_gauge!(LAG, metrics::Unit::Count, "Retained events after the checkpoint");
    metrics::describe_gauge!(
        LAG_TIME,
        metrics::Unit::Seconds,
        "Age of the first unprocessed event"
    );
    metrics::describe_gauge!(
        LOST,
        metrics::Unit::Count,
        "Events the checkpoint never reached and the hub no longer retains"
    );
    metrics::describe_gauge!(CONSUME_RATE, "Checkpointed events per second");
    metrics::describe_gauge!(INGEST_RATE, "Enqueued events per second");
    metrics::describe_gauge!(STATE, "1 for the partition's current verdict, 0 for the others");
    Ok(())
}

/// Records one `--watch` sample as gauges.
pub fn record(status: &ScopeStatus, judged: &BTreeMap<String, Judged>) {
    for p in &status.partitions {
        let Some(lag) = &p.lag else { continue };
        let labels = [
            (HUB, status.event_hub.clone()),
            (GROUP, status.consumer_group.clone()),
            (PARTITION, p.partition_id.clone()),
        ];
        metrics::gauge!(LAG, &labels).set(lag.lag_events as f64);
        if let Some(ms) = lag.lag_ms {
            metrics::gauge!(LAG_TIME, &labels).set(ms as f64 / 1000.0);
        }
        metrics::gauge!(LOST, &labels).set(lag.lost_to_retention as f64);
        let Some(j) = judged.get(&p.partition_id) else {
            continue;
        };
        if let Some(rate) = j.consume_per_s {
            metrics::gauge!(CONSUME_RATE, &labels).set(rate);
        }
        if let Some(rate) = j.ingest_per_s {
            metrics::gauge!(INGEST_RATE, &labels).set(rate);
        }
        for verdict in VERDICTS {
            let mut with = labels.to_vec();
            with.push(("verdict", verdict.as_str().replace(' ', "_")));
            metrics::gauge!(STATE, &with).set(if verdict == j.verdict { 1.0 } else { 0.0 });
        }
    }
}
