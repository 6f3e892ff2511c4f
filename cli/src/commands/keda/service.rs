//! The `externalscaler.ExternalScaler` service: one background collection per ScaledObject
//! (keyed by its namespace, name and metadata), KEDA's `azure-eventhub` semantics on top.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::Stream;
use tokio::sync::Mutex;
use tonic::{Request, Response, Status};

use super::collector::{Collector, Sample};
use super::metadata::{ScalerConfig, parse};
use super::proto::external_scaler_server::ExternalScaler;
use super::proto::{
    GetMetricSpecResponse, GetMetricsRequest, GetMetricsResponse, IsActiveResponse, MetricSpec, MetricValue,
    ScaledObjectRef,
};

/// Where the scaler reads the secrets the metadata names.
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// A ScaledObject: its Kubernetes namespace and name, and what its metadata asks for.
type ObjectKey = (String, String, ScalerConfig);

/// The scaler: its collections and how often they sample.
pub struct Scaler {
    /// Each ScaledObject's collection and when KEDA last asked for it.
    collectors: Mutex<HashMap<ObjectKey, (Arc<Collector>, Instant)>>,
    every: Duration,
    stall_after: Duration,
    env: EnvLookup,
}

impl Scaler {
    /// A scaler sampling every `every`, judging partitions stalled after `stall_after`, reading
    /// secrets with `env`.
    pub fn new(every: Duration, stall_after: Duration, env: EnvLookup) -> Self {
        Scaler {
            collectors: Mutex::new(HashMap::new()),
            every,
            stall_after,
            env,
        }
    }

    /// The collection of `object` (started, and its first sample taken, on first use).
    async fn collector(&self, object: &ScaledObjectRef) -> Result<(ScalerConfig, Arc<Collector>), Status> {
        let config = parse(&object.scaler_metadata, |var| (self.env)(var))?;
        let key = (object.namespace.clone(), object.name.clone(), config.clone());
        let mut collectors = self.collectors.lock().await;
        let now = Instant::now();
        // A ScaledObject KEDA stopped asking about (deleted, or its metadata changed) stops
        // being collected; an open StreamIsActive keeps its collection alive by itself.
        evict_idle(&mut collectors, now, IDLE);
        if let Some((collector, used)) = collectors.get_mut(&key) {
            *used = now;
            return Ok((config, Arc::clone(collector)));
        }
        // A ScaledObject whose metadata changed gets a new collection; the old one stops.
        collectors.retain(|(ns, name, _), _| !(ns == &object.namespace && name == &object.name));
        let collector = Arc::new(Collector::start(&config, self.every, self.stall_after).await?);
        collectors.insert(key, (Arc::clone(&collector), now));
        Ok((config, collector))
    }
}

/// A collection nobody asked for in this long stops (KEDA polls every 30 s by default).
const IDLE: Duration = Duration::from_secs(600);

/// Drops the entries of `map` last used more than `idle` before `now`.
fn evict_idle<K, V>(map: &mut HashMap<K, (V, Instant)>, now: Instant, idle: Duration) {
    map.retain(|_, (_, used)| now.saturating_duration_since(*used) <= idle);
}

/// The metric's name for `config` (what KEDA shows in the HPA).
fn metric_name(config: &ScalerConfig, object: &ScaledObjectRef) -> String {
    let raw = format!(
        "eventhub-{}-{}-unprocessed",
        config.event_hub.as_deref().unwrap_or(&object.name),
        config.consumer_group
    );
    raw.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// KEDA's value: the total, capped so the replicas it implies never exceed the partitions.
pub fn capped_total(sample: &Sample, threshold: i64) -> i64 {
    sample.total.min(threshold.saturating_mul(sample.partitions))
}

fn active(sample: &Sample, config: &ScalerConfig) -> bool {
    sample.total > config.activation
}

type ActivityStream = Pin<Box<dyn Stream<Item = Result<IsActiveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ExternalScaler for Scaler {
    async fn is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<IsActiveResponse>, Status> {
        let object = request.into_inner();
        let (config, collector) = self.collector(&object).await?;
        let result = active(&collector.latest(), &config);
        Ok(Response::new(IsActiveResponse { result }))
    }

    type StreamIsActiveStream = ActivityStream;

    async fn stream_is_active(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<Self::StreamIsActiveStream>, Status> {
        let object = request.into_inner();
        let (config, collector) = self.collector(&object).await?;
        let receiver = collector.subscribe();
        // The current activity first, then each change; the collection lives while streamed.
        let stream = futures::stream::unfold(
            (receiver, None::<bool>, collector, config),
            |(mut receiver, last, collector, config)| async move {
                loop {
                    let now = active(&receiver.borrow_and_update(), &config);
                    if last != Some(now) {
                        let item = Ok(IsActiveResponse { result: now });
                        return Some((item, (receiver, Some(now), collector, config)));
                    }
                    if receiver.changed().await.is_err() {
                        return None;
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_metric_spec(
        &self,
        request: Request<ScaledObjectRef>,
    ) -> Result<Response<GetMetricSpecResponse>, Status> {
        let object = request.into_inner();
        let (config, _) = self.collector(&object).await?;
        Ok(Response::new(GetMetricSpecResponse {
            metric_specs: vec![MetricSpec {
                metric_name: metric_name(&config, &object),
                target_size: config.threshold,
                target_size_float: config.threshold as f64,
            }],
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<GetMetricsRequest>,
    ) -> Result<Response<GetMetricsResponse>, Status> {
        let request = request.into_inner();
        let Some(object) = request.scaled_object_ref else {
            return Err(Status::invalid_argument("scaledObjectRef is missing"));
        };
        let (config, collector) = self.collector(&object).await?;
        let value = capped_total(&collector.latest(), config.threshold);
        let name = if request.metric_name.is_empty() {
            metric_name(&config, &object)
        } else {
            request.metric_name
        };
        Ok(Response::new(GetMetricsResponse {
            metric_values: vec![MetricValue {
                metric_name: name,
                metric_value: value,
                metric_value_float: value as f64,
            }],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_nobody_asked_for_lately_are_dropped() {
        let start = Instant::now();
        let mut map: HashMap<&str, ((), Instant)> = HashMap::new();
        map.insert("polled", ((), start + Duration::from_secs(590)));
        map.insert("deleted", ((), start));
        evict_idle(&mut map, start + Duration::from_secs(601), IDLE);
        assert_eq!(map.keys().copied().collect::<Vec<_>>(), vec!["polled"]);
    }

    #[test]
    fn the_total_is_capped_at_threshold_times_partitions_as_keda_caps_it() {
        let sample = |total, partitions| Sample { total, partitions };
        assert_eq!(capped_total(&sample(100, 4), 64), 100);
        assert_eq!(
            capped_total(&sample(1000, 4), 64),
            256,
            "never more replicas than partitions"
        );
        assert_eq!(capped_total(&sample(0, 4), 64), 0);
    }
}
