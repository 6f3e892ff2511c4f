//! `$management` READ of `com.microsoft:eventhub` and `com.microsoft:partition`.

use serde_amqp::primitives::{Array, OrderedMap, Timestamp};
use serde_amqp::value::Value;

use crate::auth::{Authorization, unauthorized};
use crate::broker::{Broker, lock, now_ms};
use crate::cbs::verify_token;
use crate::wire::message::Request;
use crate::wire::performative::condition;

/// A management answer: status, description, error condition, body.
#[derive(Debug, Clone, PartialEq)]
pub struct ManagementResponse {
    /// 200, 400 or 404.
    pub status: i32,
    /// `status-description`.
    pub description: String,
    /// `error-condition`, on failures.
    pub error_condition: Option<&'static str>,
    /// The amqp-value body (a map on success, null otherwise).
    pub body: Value,
}

fn failure(status: i32, cond: &'static str, description: String) -> ManagementResponse {
    ManagementResponse {
        status,
        description,
        error_condition: Some(cond),
        body: Value::Null,
    }
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    let mut m = OrderedMap::new();
    for (k, v) in entries {
        m.insert(Value::String(k.to_owned()), v);
    }
    Value::Map(m)
}

/// Handles one `$management` request.
pub fn handle_read(request: &Request, broker: &Broker, auth: &Authorization) -> ManagementResponse {
    let operation = request.string_property("operation").unwrap_or_default();
    if operation != "READ" {
        return failure(
            400,
            condition::NOT_ALLOWED,
            format!("unsupported $management operation {operation:?}; only READ is"),
        );
    }
    let Some(name) = request.string_property("name") else {
        return failure(
            400,
            condition::INVALID_FIELD,
            "READ: application property 'name' is missing".into(),
        );
    };
    let now = now_ms() / 1000;
    if !auth.permits(name, now) {
        // As the service does, a request may carry its own token (the official SDKs send the
        // hub's token as `security_token` on every READ): checked as a put-token for the
        // entity would be.
        let Some(token) = request.string_property("security_token") else {
            return failure(
                401,
                condition::UNAUTHORIZED,
                unauthorized(name, "Manage, EntityRead"),
            );
        };
        let config = &broker.config;
        if let Err(why) = verify_token(token, name, &config.sas_key, config.jwt_policy(), now) {
            return failure(
                401,
                condition::UNAUTHORIZED,
                format!("READ of {name:?}: security_token: {why}"),
            );
        }
    }
    let Some(hub) = broker.hub(name) else {
        return failure(
            404,
            condition::NOT_FOUND,
            format!("event hub {name:?} does not exist"),
        );
    };
    match request.string_property("type").unwrap_or_default() {
        "com.microsoft:eventhub" => ManagementResponse {
            status: 200,
            description: "OK".into(),
            error_condition: None,
            body: map(vec![
                ("name", Value::String(hub.name.clone())),
                ("type", Value::String("com.microsoft:eventhub".into())),
                (
                    "created_at",
                    Value::Timestamp(Timestamp::from_milliseconds(hub.created_ms)),
                ),
                (
                    "partition_count",
                    Value::Int(i32::try_from(hub.partitions.len()).unwrap_or(i32::MAX)),
                ),
                (
                    "partition_ids",
                    Value::Array(Array(
                        (0..hub.partitions.len())
                            .map(|i| Value::String(i.to_string()))
                            .collect(),
                    )),
                ),
            ]),
        },
        "com.microsoft:partition" => {
            let Some(id) = request.string_property("partition") else {
                return failure(
                    400,
                    condition::INVALID_FIELD,
                    "READ partition: application property 'partition' is missing".into(),
                );
            };
            let Some(index) = hub.partition_index(id) else {
                return failure(
                    404,
                    condition::NOT_FOUND,
                    format!("partition {id:?} does not exist in event hub {:?}", hub.name),
                );
            };
            let info = match hub.partitions.get(index) {
                Some(log) => lock(log).info(),
                None => {
                    return failure(
                        404,
                        condition::NOT_FOUND,
                        format!("partition {id:?} does not exist"),
                    );
                }
            };
            ManagementResponse {
                status: 200,
                description: "OK".into(),
                error_condition: None,
                body: map(vec![
                    ("name", Value::String(hub.name.clone())),
                    ("type", Value::String("com.microsoft:partition".into())),
                    ("partition", Value::String(id.to_owned())),
                    ("begin_sequence_number", Value::Long(info.begin_sequence_number)),
                    (
                        "last_enqueued_sequence_number",
                        Value::Long(info.last_enqueued_sequence_number),
                    ),
                    (
                        "last_enqueued_offset",
                        Value::String(info.last_enqueued_offset.to_string()),
                    ),
                    (
                        "last_enqueued_time_utc",
                        Value::Timestamp(Timestamp::from_milliseconds(info.last_enqueued_time_ms)),
                    ),
                    ("is_partition_empty", Value::Bool(info.is_empty)),
                    // The service's replication epoch of the last sequence number (0 without
                    // geo-replication); the official Rust crate refuses an answer without it.
                    ("last_enqueued_sequence_number_epoch", Value::Long(0)),
                ]),
            }
        }
        other => failure(
            400,
            condition::NOT_ALLOWED,
            format!("READ of unknown type {other:?}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EmulatorConfig, parse_hub_spec};

    fn read(props: &[(&str, &str)]) -> ManagementResponse {
        read_as(props, &Authorization::everything())
    }

    fn read_as(props: &[(&str, &str)], auth: &Authorization) -> ManagementResponse {
        let mut config = EmulatorConfig::default();
        let (n, h) = parse_hub_spec("orders:3").unwrap();
        config.hubs.insert(n, h);
        let broker = Broker::new(config);
        let request = Request {
            message_id: Value::Null,
            reply_to: None,
            application_properties: props
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
                .collect(),
            body: Value::Null,
        };
        handle_read(&request, &broker, auth)
    }

    #[test]
    fn reads_hub_and_partition() {
        let hub = read(&[
            ("operation", "READ"),
            ("name", "Orders"),
            ("type", "com.microsoft:eventhub"),
        ]);
        assert_eq!(hub.status, 200);
        let Value::Map(m) = &hub.body else { panic!() };
        assert!(
            matches!(m.get(&Value::String("partition_ids".into())), Some(Value::Array(a)) if a.0.len() == 3)
        );
        let p = read(&[
            ("operation", "READ"),
            ("name", "orders"),
            ("type", "com.microsoft:partition"),
            ("partition", "2"),
        ]);
        assert_eq!(p.status, 200);
        let Value::Map(m) = &p.body else { panic!() };
        assert_eq!(
            m.get(&Value::String("is_partition_empty".into())),
            Some(&Value::Bool(true))
        );
        assert_eq!(
            m.get(&Value::String("last_enqueued_offset".into())),
            Some(&Value::String("-1".into()))
        );
    }

    #[test]
    fn errors_have_status_and_condition() {
        let missing = read(&[
            ("operation", "READ"),
            ("name", "nope"),
            ("type", "com.microsoft:eventhub"),
        ]);
        assert_eq!(
            (missing.status, missing.error_condition),
            (404, Some(condition::NOT_FOUND))
        );
        let bad_partition = read(&[
            ("operation", "READ"),
            ("name", "orders"),
            ("type", "com.microsoft:partition"),
            ("partition", "9"),
        ]);
        assert_eq!(bad_partition.status, 404);
        assert_eq!(read(&[("operation", "WRITE"), ("name", "orders")]).status, 400);
        assert_eq!(
            read(&[("operation", "READ"), ("name", "orders"), ("type", "x")]).status,
            400
        );
    }

    #[test]
    fn reads_need_a_token_covering_the_hub() {
        let props = [
            ("operation", "READ"),
            ("name", "orders"),
            ("type", "com.microsoft:eventhub"),
        ];
        let anonymous = read_as(&props, &Authorization::default());
        assert_eq!(
            (anonymous.status, anonymous.error_condition),
            (401, Some(condition::UNAUTHORIZED))
        );
        assert!(
            anonymous.description.contains("'orders'"),
            "{}",
            anonymous.description
        );
        let mut auth = Authorization::default();
        auth.grant(crate::auth::Grant::new("sb://localhost/orders", i64::MAX), 0)
            .unwrap();
        assert_eq!(read_as(&props, &auth).status, 200);
        let other = [
            ("operation", "READ"),
            ("name", "payments"),
            ("type", "com.microsoft:eventhub"),
        ];
        assert_eq!(read_as(&other, &auth).status, 401);
    }
}
