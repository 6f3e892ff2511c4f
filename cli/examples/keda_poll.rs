//! Polls a running `ehstore keda-scaler` the way KEDA does and prints the latency of
//! `GetMetrics` (median, p99, max) and the values served.
//!
//! `cargo run -p eventhubs-store-cli --example keda_poll -- ADDR STORE_ENV CONNECTION_ENV [POLLS]`
//! (`STORE_ENV` and `CONNECTION_ENV` name the scaler's environment variables, as a
//! ScaledObject's metadata does).

use std::time::{Duration, Instant};

use eventhubs_store_cli::commands::keda::proto::external_scaler_client::ExternalScalerClient;
use eventhubs_store_cli::commands::keda::proto::{GetMetricsRequest, ScaledObjectRef};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, store_env, connection_env, rest @ ..] = args.as_slice() else {
        return Err("usage: keda_poll ADDR STORE_ENV CONNECTION_ENV [POLLS]".into());
    };
    let polls: usize = rest.first().map_or(Ok(200), |n| n.parse())?;
    let mut client = ExternalScalerClient::connect(format!("http://{addr}")).await?;
    let object = ScaledObjectRef {
        name: "poll".into(),
        namespace: "default".into(),
        scaler_metadata: [
            ("storeUrlFromEnv".to_owned(), store_env.clone()),
            ("connectionFromEnv".to_owned(), connection_env.clone()),
        ]
        .into(),
    };
    let request = || GetMetricsRequest {
        scaled_object_ref: Some(object.clone()),
        metric_name: String::new(),
    };
    // The first poll starts the background collection and waits for its first sample.
    let started = Instant::now();
    let first = client.get_metrics(request()).await?.into_inner();
    println!(
        "first poll (starts the collection): {:?}, value {}",
        started.elapsed(),
        first.metric_values[0].metric_value
    );
    let mut took: Vec<Duration> = Vec::with_capacity(polls);
    let mut last = 0;
    for _ in 0..polls {
        let started = Instant::now();
        let got = client.get_metrics(request()).await?.into_inner();
        took.push(started.elapsed());
        last = got.metric_values[0].metric_value;
    }
    took.sort();
    let at = |q: f64| took[((took.len() as f64 * q) as usize).min(took.len() - 1)];
    println!(
        "{polls} polls of GetMetrics: median {:?}, p99 {:?}, max {:?}; value {last}",
        at(0.5),
        at(0.99),
        took[took.len() - 1]
    );
    Ok(())
}
