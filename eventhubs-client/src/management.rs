//! `$management` READ of `com.microsoft:eventhub` and `com.microsoft:partition`.

use fe2o3_amqp::session::SessionHandle;
use fe2o3_amqp::types::primitives::{OrderedMap, Value};
use tracing::Instrument;

use crate::amqp::errors::{Failure, classify};
use crate::amqp::message::timestamp;
use crate::amqp::request::request;
use crate::client::{EventHubProperties, PartitionProperties};
use crate::error::{Error, Result};

fn protocol(message: String) -> Error {
    Error::new(classify(&Failure::Protocol), message)
}

type Map = OrderedMap<Value, Value>;

fn body_map(body: Value, what: &str) -> Result<Map> {
    match body {
        Value::Map(m) => Ok(m),
        other => Err(protocol(format!("{what}: the answer is not a map: {other:?}"))),
    }
}

fn field<'a>(map: &'a Map, key: &str, what: &str) -> Result<&'a Value> {
    map.get(&Value::String(key.to_owned()))
        .or_else(|| map.get(&Value::Symbol(key.into())))
        .ok_or_else(|| protocol(format!("{what}: the answer has no {key:?}")))
}

fn string(map: &Map, key: &str, what: &str) -> Result<String> {
    match field(map, key, what)? {
        Value::String(s) => Ok(s.clone()),
        Value::Symbol(s) => Ok(s.0.clone()),
        Value::Long(v) => Ok(v.to_string()),
        other => Err(protocol(format!("{what}: {key:?} is {other:?}"))),
    }
}

fn long(map: &Map, key: &str, what: &str) -> Result<i64> {
    match field(map, key, what)? {
        Value::Long(v) => Ok(*v),
        Value::Int(v) => Ok(i64::from(*v)),
        Value::Uint(v) => Ok(i64::from(*v)),
        other => Err(protocol(format!("{what}: {key:?} is {other:?}"))),
    }
}

async fn read(
    session: &mut SessionHandle<()>,
    entity_type: &str,
    hub: &str,
    partition: Option<&str>,
) -> Result<Map> {
    let what = match partition {
        Some(p) => format!("READ {entity_type} {hub}/{p}"),
        None => format!("READ {entity_type} {hub}"),
    };
    let mut properties = vec![("operation", "READ"), ("name", hub), ("type", entity_type)];
    if let Some(p) = partition {
        properties.push(("partition", p));
    }
    let response = request(session, "$management", &properties, Value::Null)
        .instrument(tracing::debug_span!(
            "eventhubs.management_read",
            entity_type,
            hub,
            partition
        ))
        .await?
        .success(&what)?;
    body_map(response.body, &what)
}

/// Reads the hub's properties.
pub(crate) async fn read_hub(session: &mut SessionHandle<()>, hub: &str) -> Result<EventHubProperties> {
    let what = "READ com.microsoft:eventhub";
    let map = read(session, "com.microsoft:eventhub", hub, None).await?;
    let partition_ids = match field(&map, "partition_ids", what)? {
        Value::Array(a) => &a.0,
        Value::List(l) => l,
        other => return Err(protocol(format!("{what}: partition_ids is {other:?}"))),
    };
    let partition_ids = partition_ids
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            other => Err(protocol(format!("{what}: a partition id is {other:?}"))),
        })
        .collect::<Result<Vec<_>>>()?;
    let created_at = timestamp(field(&map, "created_at", what)?)
        .ok_or_else(|| protocol(format!("{what}: created_at is unreadable")))?;
    Ok(EventHubProperties {
        name: string(&map, "name", what)?,
        partition_ids,
        created_at,
    })
}

/// Reads one partition's properties.
pub(crate) async fn read_partition(
    session: &mut SessionHandle<()>,
    hub: &str,
    partition_id: &str,
) -> Result<PartitionProperties> {
    let what = "READ com.microsoft:partition";
    let map = read(session, "com.microsoft:partition", hub, Some(partition_id)).await?;
    let is_empty = match field(&map, "is_partition_empty", what)? {
        Value::Bool(b) => *b,
        other => return Err(protocol(format!("{what}: is_partition_empty is {other:?}"))),
    };
    let last_enqueued_time = if is_empty {
        None
    } else {
        map.get(&Value::String("last_enqueued_time_utc".into()))
            .and_then(timestamp)
    };
    Ok(PartitionProperties {
        event_hub: string(&map, "name", what)?,
        id: string(&map, "partition", what)?,
        beginning_sequence_number: long(&map, "begin_sequence_number", what)?,
        last_enqueued_sequence_number: long(&map, "last_enqueued_sequence_number", what)?,
        last_enqueued_offset: string(&map, "last_enqueued_offset", what)?,
        last_enqueued_time,
        is_empty,
    })
}
