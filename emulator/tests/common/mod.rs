//! Helpers for the integration tests: a plain fe2o3-amqp client talking to the emulator.
#![allow(dead_code)]
// Test support: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod raw;

use eventhubs_emulator::{Emulator, EmulatorHandle};
use fe2o3_amqp::connection::ConnectionHandle;
use fe2o3_amqp::link::delivery::Sendable;
use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::session::SessionHandle;
use fe2o3_amqp::types::definitions::Fields;
use fe2o3_amqp::types::messaging::annotations::OwnedKey;
use fe2o3_amqp::types::messaging::{
    ApplicationProperties, Body, Data, Message, MessageAnnotations, MessageId, Properties, Source,
};
use fe2o3_amqp::types::primitives::{Binary, Symbol, Value};
use fe2o3_amqp::{Connection, Receiver, Sender, Session};

/// Starts an emulator with hub `orders` (4 partitions, groups `$default` and `cg1`).
pub async fn start() -> EmulatorHandle {
    if let Ok(filter) = std::env::var("EMULATOR_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    Emulator::builder()
        .hub("orders", 4)
        .consumer_group("orders", "cg1")
        .start()
        .await
        .expect("emulator starts")
}

/// A connection (SASL ANONYMOUS) and one session.
pub struct Client {
    pub connection: ConnectionHandle<()>,
    pub session: SessionHandle<()>,
}

impl Client {
    /// SASL ANONYMOUS and a put-token for the whole namespace, as the SDKs authenticate.
    pub async fn connect(emulator: &EmulatorHandle) -> Self {
        let mut client = Self::connect_without_token(emulator).await;
        let (status, description) = client.put_token(emulator, "sb://localhost/").await;
        assert_eq!(status, 202, "{description}");
        client
    }

    /// SASL ANONYMOUS and no put-token: entity links and management requests are refused.
    pub async fn connect_without_token(emulator: &EmulatorHandle) -> Self {
        Self::connect_with(emulator, SaslProfile::Anonymous)
            .await
            .expect("connects")
    }

    /// Puts a SAS token signed with the emulator's key for `audience`; (status, description).
    pub async fn put_token(&mut self, emulator: &EmulatorHandle, audience: &str) -> (i32, String) {
        let key = &emulator.broker().config.sas_key;
        let expires = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 3600;
        let token = eventhubs_emulator::cbs::sas_token(audience, key, expires);
        let (status, description, _) = self
            .request(
                "$cbs",
                &[
                    ("operation", "put-token"),
                    ("type", "servicebus.windows.net:sastoken"),
                    ("name", audience),
                ],
                Value::String(token),
            )
            .await;
        (status, description)
    }

    pub async fn connect_with(
        emulator: &EmulatorHandle,
        profile: SaslProfile,
    ) -> Result<Self, fe2o3_amqp::connection::OpenError> {
        let url = format!("amqp://127.0.0.1:{}", emulator.local_addr().port());
        let mut connection = Connection::builder()
            .container_id("test-client")
            .sasl_profile(profile)
            .open(url.as_str())
            .await?;
        let session = Session::begin(&mut connection).await.expect("session begins");
        Ok(Self { connection, session })
    }

    pub async fn close(mut self) {
        let _ = self.session.end().await;
        let _ = self.connection.close().await;
    }

    pub async fn sender(&mut self, address: &str) -> Sender {
        Sender::attach(&mut self.session, format!("sender-{address}"), address)
            .await
            .expect("sender attaches")
    }

    /// A receiver on `address` with an optional selector filter, owner level and capabilities.
    pub async fn receiver(
        &mut self,
        address: &str,
        filter: Option<(Value, &str)>,
        owner_level: Option<i64>,
        capabilities: &[&str],
    ) -> Result<Receiver, fe2o3_amqp::link::ReceiverAttachError> {
        let mut source = Source::builder().address(address);
        if let Some((descriptor, expression)) = filter {
            let described = match descriptor {
                Value::Symbol(s) => serde_amqp::described::Described {
                    descriptor: serde_amqp::descriptor::Descriptor::Name(s),
                    value: Value::String(expression.to_owned()),
                },
                Value::Ulong(code) => serde_amqp::described::Described {
                    descriptor: serde_amqp::descriptor::Descriptor::Code(code),
                    value: Value::String(expression.to_owned()),
                },
                other => panic!("descriptor {other:?}"),
            };
            let mut set = fe2o3_amqp::types::messaging::FilterSet::new();
            set.insert(
                Symbol::from("apache.org:selector-filter:string"),
                Value::Described(Box::new(described)),
            );
            source = source.filter(set);
        }
        let mut builder = Receiver::builder()
            .name(format!("receiver-{address}-{}", rand::random::<u32>()))
            .source(source.build())
            .target("receiver-target");
        if let Some(level) = owner_level {
            let mut props = Fields::new();
            props.insert(Symbol::from("com.microsoft:epoch"), Value::Long(level));
            builder = builder.properties(props);
        }
        for cap in capabilities {
            builder = builder.add_desired_capabilities(Symbol::from(*cap));
        }
        builder.attach(&mut self.session).await
    }

    /// Sends one `$management` or `$cbs` request and returns (status, description, body).
    pub async fn request(&mut self, node: &str, props: &[(&str, &str)], body: Value) -> (i32, String, Value) {
        let reply_to = format!("{node}-reply-{}", rand::random::<u32>());
        let mut sender = Sender::attach(&mut self.session, format!("{reply_to}-s"), node)
            .await
            .expect("attach");
        let mut receiver = Receiver::builder()
            .name(format!("{reply_to}-r"))
            .source(node)
            .target(reply_to.as_str())
            .attach(&mut self.session)
            .await
            .expect("attach reply");
        let mut app = ApplicationProperties::builder();
        for (k, v) in props {
            app = app.insert(*k, *v);
        }
        let message = Message::builder()
            .properties(
                Properties::builder()
                    .message_id(MessageId::from(42u64))
                    .reply_to(reply_to.clone())
                    .build(),
            )
            .application_properties(app.build())
            .value(body)
            .build();
        sender.send(message).await.expect("request accepted");
        let delivery = receiver.recv::<Value>().await.expect("response");
        receiver.accept(&delivery).await.expect("accept");
        let msg = delivery.message();
        let correlation = msg.properties.as_ref().and_then(|p| p.correlation_id.clone());
        assert_eq!(
            correlation,
            Some(MessageId::from(42u64)),
            "correlation-id echoes message-id"
        );
        let app = msg
            .application_properties
            .as_ref()
            .expect("application properties");
        let status = match app.0.get("status-code") {
            Some(fe2o3_amqp::types::primitives::SimpleValue::Int(code)) => *code,
            other => panic!("status-code {other:?}"),
        };
        let description = match app.0.get("status-description") {
            Some(fe2o3_amqp::types::primitives::SimpleValue::String(s)) => s.clone(),
            _ => String::new(),
        };
        let body = delivery.body().clone();
        let _ = sender.close().await;
        let _ = receiver.close().await;
        (status, description, body)
    }
}

/// Message annotations carrying `x-opt-partition-key`.
fn key_annotation(key: &str) -> MessageAnnotations {
    MessageAnnotations::builder()
        .insert(
            OwnedKey::Symbol(Symbol::from("x-opt-partition-key")),
            Value::String(key.to_owned()),
        )
        .build()
}

/// An event message with a body and an optional partition key annotation.
pub fn event(body: &str, partition_key: Option<&str>) -> Message<Data> {
    let mut builder = Message::builder();
    if let Some(key) = partition_key {
        builder = builder.message_annotations(key_annotation(key));
    }
    builder.data(Binary::from(body.as_bytes().to_vec())).build()
}

/// A batch (message format 0x80013700): each Data section one encoded event.
pub fn batch(
    bodies: &[&str],
    partition_key: Option<&str>,
) -> Sendable<fe2o3_amqp::types::messaging::Batch<Data>> {
    let sections: Vec<Data> = bodies
        .iter()
        .map(|b| {
            let encoded = serde_amqp::to_vec(
                &fe2o3_amqp::types::messaging::message::__private::Serializable(event(b, partition_key)),
            )
            .expect("encode");
            Data(Binary::from(encoded))
        })
        .collect();
    let mut builder = Message::builder();
    if let Some(key) = partition_key {
        builder = builder.message_annotations(key_annotation(key));
    }
    Sendable::builder()
        .message(builder.data_batch(sections).build())
        .message_format(0x8001_3700)
        .build()
}

/// What a delivered event carried.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub body: String,
    pub sequence_number: Option<Value>,
    pub offset: Option<Value>,
    pub enqueued_time: Option<Value>,
    pub partition_key: Option<Value>,
    pub delivery_annotations: Option<Vec<(String, Value)>>,
}

/// Receives one event (with a timeout) and accepts it.
pub async fn recv(receiver: &mut Receiver) -> Received {
    let delivery = tokio::time::timeout(std::time::Duration::from_secs(10), receiver.recv::<Body<Value>>())
        .await
        .expect("an event within 10 s")
        .expect("recv");
    receiver.accept(&delivery).await.expect("accept");
    let msg = delivery.message();
    let ann = |k: &str| {
        msg.message_annotations
            .as_ref()
            .and_then(|a| a.0.get(&OwnedKey::Symbol(Symbol::from(k))).cloned())
    };
    let body = match &msg.body {
        Body::Data(batch) => batch
            .iter()
            .map(|d| String::from_utf8_lossy(&d.0).into_owned())
            .collect(),
        other => format!("{other:?}"),
    };
    Received {
        body,
        sequence_number: ann("x-opt-sequence-number"),
        offset: ann("x-opt-offset"),
        enqueued_time: ann("x-opt-enqueued-time"),
        partition_key: ann("x-opt-partition-key"),
        delivery_annotations: msg.delivery_annotations.as_ref().map(|d| {
            d.0.iter()
                .map(|(k, v)| {
                    let key = match k {
                        OwnedKey::Symbol(s) => s.0.clone(),
                        other => format!("{other:?}"),
                    };
                    (key, v.clone())
                })
                .collect()
        }),
    }
}

/// Asserts that nothing arrives within `ms`.
pub async fn assert_nothing(receiver: &mut Receiver, ms: u64) {
    let got = tokio::time::timeout(
        std::time::Duration::from_millis(ms),
        receiver.recv::<Body<Value>>(),
    )
    .await;
    assert!(got.is_err(), "expected no event, got {got:?}");
}
