//! `$cbs` put-token, `$management` READ and SASL, with a plain fe2o3-amqp client; which links
//! and requests a connection may make without, with and beyond its tokens.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Client, start};
use eventhubs_emulator::SasKey;
use eventhubs_emulator::broker::now_ms;
use eventhubs_emulator::cbs::sas_token;
use fe2o3_amqp::sasl_profile::SaslProfile;
use fe2o3_amqp::types::primitives::Value;

const PUT_TOKEN: [(&str, &str); 3] = [
    ("operation", "put-token"),
    ("type", "servicebus.windows.net:sastoken"),
    ("name", "sb://localhost/orders"),
];

#[tokio::test]
async fn put_token_with_a_valid_sas_is_202() {
    let emulator = start().await;
    let mut client = Client::connect(&emulator).await;
    let token = sas_token("sb://localhost/orders", &SasKey::default(), now_ms() / 1000 + 600);
    let (status, _, _) = client.request("$cbs", &PUT_TOKEN, Value::String(token)).await;
    assert_eq!(status, 202);
    client.close().await;
}

#[tokio::test]
async fn put_token_with_a_bad_signature_or_expired_is_401() {
    let emulator = start().await;
    let mut client = Client::connect(&emulator).await;
    let forged = SasKey {
        name: SasKey::default().name,
        key: "not-the-key".into(),
    };
    let bad = sas_token("sb://localhost/orders", &forged, now_ms() / 1000 + 600);
    let (status, description, _) = client.request("$cbs", &PUT_TOKEN, Value::String(bad)).await;
    assert_eq!(status, 401);
    assert!(description.contains("signature"), "{description}");
    let expired = sas_token("sb://localhost/orders", &SasKey::default(), 1000);
    let (status, description, _) = client.request("$cbs", &PUT_TOKEN, Value::String(expired)).await;
    assert_eq!(status, 401);
    assert!(description.contains("expired"), "{description}");
    let (status, _, _) = client
        .request(
            "$cbs",
            &[("operation", "other"), ("name", "x")],
            Value::String("t".into()),
        )
        .await;
    assert_eq!(status, 400);
    client.close().await;
}

fn map_get<'a>(body: &'a Value, key: &str) -> &'a Value {
    match body {
        Value::Map(m) => m
            .get(&Value::String(key.into()))
            .unwrap_or_else(|| panic!("{key} missing")),
        other => panic!("body is not a map: {other:?}"),
    }
}

#[tokio::test]
async fn management_reads_hub_and_partition() {
    let emulator = start().await;
    let mut client = Client::connect(&emulator).await;
    let (status, _, body) = client
        .request(
            "$management",
            &[
                ("operation", "READ"),
                ("name", "orders"),
                ("type", "com.microsoft:eventhub"),
            ],
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(map_get(&body, "name"), &Value::String("orders".into()));
    assert_eq!(map_get(&body, "partition_count"), &Value::Int(4));
    assert!(matches!(map_get(&body, "created_at"), Value::Timestamp(_)));
    match map_get(&body, "partition_ids") {
        Value::Array(ids) => assert_eq!(
            ids.0,
            (0..4).map(|i| Value::String(i.to_string())).collect::<Vec<_>>()
        ),
        other => panic!("partition_ids must be an AMQP array, got {other:?}"),
    }
    let (status, _, body) = client
        .request(
            "$management",
            &[
                ("operation", "READ"),
                ("name", "orders"),
                ("type", "com.microsoft:partition"),
                ("partition", "1"),
            ],
            Value::Null,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(map_get(&body, "begin_sequence_number"), &Value::Long(0));
    assert_eq!(map_get(&body, "last_enqueued_sequence_number"), &Value::Long(-1));
    assert_eq!(
        map_get(&body, "last_enqueued_offset"),
        &Value::String("-1".into())
    );
    assert!(matches!(
        map_get(&body, "last_enqueued_time_utc"),
        Value::Timestamp(_)
    ));
    assert_eq!(map_get(&body, "is_partition_empty"), &Value::Bool(true));
    client.close().await;
}

#[tokio::test]
async fn management_errors_are_404_and_400() {
    let emulator = start().await;
    let mut client = Client::connect(&emulator).await;
    let (status, description, _) = client
        .request(
            "$management",
            &[
                ("operation", "READ"),
                ("name", "missing"),
                ("type", "com.microsoft:eventhub"),
            ],
            Value::Null,
        )
        .await;
    assert_eq!(status, 404);
    assert!(description.contains("missing"));
    let (status, _, _) = client
        .request(
            "$management",
            &[
                ("operation", "READ"),
                ("name", "orders"),
                ("type", "com.microsoft:partition"),
                ("partition", "17"),
            ],
            Value::Null,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _, _) = client
        .request(
            "$management",
            &[("operation", "DELETE"), ("name", "orders")],
            Value::Null,
        )
        .await;
    assert_eq!(status, 400);
    client.close().await;
}

#[tokio::test]
async fn sasl_plain_checks_the_key() {
    let emulator = start().await;
    let good = SaslProfile::Plain {
        username: "RootManageSharedAccessKey".into(),
        password: "SAS_KEY_VALUE".into(),
    };
    Client::connect_with(&emulator, good)
        .await
        .expect("PLAIN with the key")
        .close()
        .await;
    let bad = SaslProfile::Plain {
        username: "RootManageSharedAccessKey".into(),
        password: "wrong".into(),
    };
    assert!(Client::connect_with(&emulator, bad).await.is_err());
}

/// The request a management READ of the hub sends.
const READ_HUB: [(&str, &str); 3] = [
    ("operation", "READ"),
    ("name", "orders"),
    ("type", "com.microsoft:eventhub"),
];

fn unauthorized(text: &str) -> bool {
    text.contains("unauthorized-access") || text.contains("UnauthorizedAccess")
}

#[tokio::test]
async fn without_a_put_token_links_and_management_are_unauthorized() {
    let emulator = start().await;
    let mut client = Client::connect_without_token(&emulator).await;
    let sender = fe2o3_amqp::Sender::attach(&mut client.session, "s", "orders/Partitions/0").await;
    let text = format!("{:?}", sender.expect_err("a sender without a token is refused"));
    assert!(unauthorized(&text), "{text}");
    let receiver = client
        .receiver("orders/ConsumerGroups/$default/Partitions/0", None, None, &[])
        .await;
    let text = format!(
        "{:?}",
        receiver.expect_err("a receiver without a token is refused")
    );
    assert!(unauthorized(&text) && text.contains("Listen"), "{text}");
    let (status, description, _) = client.request("$management", &READ_HUB, Value::Null).await;
    assert_eq!(status, 401, "{description}");
    assert!(description.contains("'orders'"), "{description}");
    client.close().await;
}

#[tokio::test]
async fn a_token_opens_exactly_what_its_audience_covers() {
    let emulator = start().await;
    let mut client = Client::connect_without_token(&emulator).await;
    // A token for partition 1 only.
    let (status, description) = client
        .put_token(&emulator, "sb://localhost/orders/Partitions/1")
        .await;
    assert_eq!(status, 202, "{description}");
    fe2o3_amqp::Sender::attach(&mut client.session, "s1", "orders/Partitions/1")
        .await
        .expect("covered by the token");
    let other = fe2o3_amqp::Sender::attach(&mut client.session, "s0", "orders/Partitions/0").await;
    assert!(unauthorized(&format!("{other:?}")), "{other:?}");
    let (status, _, _) = client.request("$management", &READ_HUB, Value::Null).await;
    assert_eq!(status, 401, "the hub itself is not covered");
    // A token for the hub covers its partitions, consumer groups and management reads.
    let (status, description) = client.put_token(&emulator, "sb://localhost/orders").await;
    assert_eq!(status, 202, "{description}");
    fe2o3_amqp::Sender::attach(&mut client.session, "s0b", "orders/Partitions/0")
        .await
        .expect("covered by the hub token");
    client
        .receiver("orders/ConsumerGroups/cg1/Partitions/3", None, None, &[])
        .await
        .expect("covered by the hub token");
    let (status, description, _) = client.request("$management", &READ_HUB, Value::Null).await;
    assert_eq!(status, 200, "{description}");
    client.close().await;
}

#[tokio::test]
async fn a_token_signed_for_another_entity_is_refused_and_grants_nothing() {
    let emulator = start().await;
    let mut client = Client::connect_without_token(&emulator).await;
    let elsewhere = sas_token(
        "sb://localhost/payments",
        &SasKey::default(),
        now_ms() / 1000 + 600,
    );
    let (status, description, _) = client.request("$cbs", &PUT_TOKEN, Value::String(elsewhere)).await;
    assert_eq!(status, 401, "{description}");
    assert!(description.contains("does not cover"), "{description}");
    let sender = fe2o3_amqp::Sender::attach(&mut client.session, "s", "orders").await;
    assert!(unauthorized(&format!("{sender:?}")), "{sender:?}");
    client.close().await;
}

#[tokio::test]
async fn sasl_plain_with_the_key_or_open_access_needs_no_token() {
    let emulator = start().await;
    let plain = SaslProfile::Plain {
        username: "RootManageSharedAccessKey".into(),
        password: "SAS_KEY_VALUE".into(),
    };
    let mut client = Client::connect_with(&emulator, plain).await.expect("PLAIN");
    fe2o3_amqp::Sender::attach(&mut client.session, "s", "orders")
        .await
        .expect("PLAIN with the key opens everything");
    client.close().await;

    let open = eventhubs_emulator::Emulator::builder()
        .hub("orders", 1)
        .open_access(true)
        .start()
        .await
        .unwrap();
    let mut client = Client::connect_without_token(&open).await;
    fe2o3_amqp::Sender::attach(&mut client.session, "s", "orders")
        .await
        .expect("open access");
    let (status, _, _) = client.request("$management", &READ_HUB, Value::Null).await;
    assert_eq!(status, 200);
    client.close().await;
}

/// A JWT-shaped token signed by nobody: what a client without the key could make up.
fn made_up_jwt() -> String {
    use base64::Engine;
    let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.{}",
        enc(r#"{"alg":"RS256","typ":"JWT"}"#),
        enc(&format!(
            r#"{{"aud":"https://eventhubs.azure.net/","exp":{}}}"#,
            now_ms() / 1000 + 600
        )),
        enc("not-a-signature")
    )
}

const PUT_JWT: [(&str, &str); 3] = [
    ("operation", "put-token"),
    ("type", "jwt"),
    ("name", "sb://localhost/orders"),
];

#[tokio::test]
async fn a_jwt_is_refused_with_401_and_grants_nothing_by_default() {
    let emulator = start().await;
    let mut client = Client::connect_without_token(&emulator).await;
    let (status, description, _) = client
        .request("$cbs", &PUT_JWT, Value::String(made_up_jwt()))
        .await;
    assert_eq!(status, 401, "{description}");
    assert!(description.contains("accept_unverified_jwt"), "{description}");
    let sender = fe2o3_amqp::Sender::attach(&mut client.session, "s", "orders").await;
    assert!(unauthorized(&format!("{sender:?}")), "{sender:?}");
    let (status, _, _) = client.request("$management", &READ_HUB, Value::Null).await;
    assert_eq!(status, 401);
    client.close().await;
}

#[tokio::test]
async fn a_jwt_opens_its_audience_only_when_unverified_jwts_are_accepted() {
    let emulator = eventhubs_emulator::Emulator::builder()
        .hub("orders", 1)
        .hub("payments", 1)
        .accept_unverified_jwt(true)
        .start()
        .await
        .unwrap();
    let mut client = Client::connect_without_token(&emulator).await;
    let (status, description, _) = client
        .request("$cbs", &PUT_JWT, Value::String(made_up_jwt()))
        .await;
    assert_eq!(status, 202, "{description}");
    fe2o3_amqp::Sender::attach(&mut client.session, "s", "orders")
        .await
        .expect("the JWT's audience is open");
    let other = fe2o3_amqp::Sender::attach(&mut client.session, "p", "payments").await;
    assert!(unauthorized(&format!("{other:?}")), "{other:?}");
    client.close().await;
}

/// What the official Rust crate (azure_messaging_eventhubs) and the JavaScript SDK send before
/// a management READ: a put-token for `<hub>/$management` (signed for the whole hub), then each
/// READ carrying the hub's token as its `security_token` application property. The service
/// accepts these; the token is checked as a put-token for the entity would be.
#[tokio::test]
async fn a_management_read_carrying_a_valid_security_token_is_answered() {
    let emulator = start().await;
    let mut client = Client::connect_without_token(&emulator).await;
    let soon = now_ms() / 1000 + 600;
    let hub_token = sas_token("sb://localhost/orders", &SasKey::default(), soon);
    let put = [
        ("operation", "put-token"),
        ("type", "servicebus.windows.net:sastoken"),
        ("name", "amqps://localhost/orders/$management"),
    ];
    let (status, description, _) = client
        .request("$cbs", &put, Value::String(hub_token.clone()))
        .await;
    assert_eq!(status, 202, "{description}");
    // The grant covers `orders/$management`, not the hub: a bare READ is still refused.
    let (status, _, _) = client.request("$management", &READ_HUB, Value::Null).await;
    assert_eq!(status, 401);

    let with = |token: &str| {
        let mut properties = READ_HUB.to_vec();
        properties.push(("security_token", token));
        properties
            .into_iter()
            .map(|(k, v)| (k, v.to_owned()))
            .collect::<Vec<_>>()
    };
    let read = async |client: &mut Client, properties: Vec<(&str, String)>| {
        let borrowed: Vec<(&str, &str)> = properties.iter().map(|(k, v)| (*k, v.as_str())).collect();
        client.request("$management", &borrowed, Value::Null).await
    };
    let (status, description, body) = read(&mut client, with(&hub_token)).await;
    assert_eq!(status, 200, "{description}");
    assert_eq!(map_get(&body, "name"), &Value::String("orders".into()));
    let mut partition = with(&hub_token);
    partition.retain(|(k, _)| *k != "type");
    partition.push(("type", "com.microsoft:partition".into()));
    partition.push(("partition", "2".into()));
    let (status, description, _) = read(&mut client, partition).await;
    assert_eq!(status, 200, "{description}");

    // Forged, expired, or for another hub: refused, saying why.
    let forged = sas_token(
        "sb://localhost/orders",
        &SasKey {
            name: SasKey::default().name,
            key: "not-the-key".into(),
        },
        soon,
    );
    let expired = sas_token("sb://localhost/orders", &SasKey::default(), 1000);
    let elsewhere = sas_token("sb://localhost/payments", &SasKey::default(), soon);
    for (token, why) in [
        (forged, "signature"),
        (expired, "expired"),
        (elsewhere, "does not cover"),
        (made_up_jwt(), "JWT"),
    ] {
        let (status, description, _) = read(&mut client, with(&token)).await;
        assert_eq!(status, 401, "{description}");
        assert!(
            description.contains("security_token") && description.contains(why),
            "{description}"
        );
    }
    client.close().await;

    // A JWT as security_token, where JWTs are accepted unverified.
    let lenient = eventhubs_emulator::Emulator::builder()
        .hub("orders", 1)
        .accept_unverified_jwt(true)
        .start()
        .await
        .unwrap();
    let mut client = Client::connect_without_token(&lenient).await;
    let (status, description, _) = read(&mut client, with(&made_up_jwt())).await;
    assert_eq!(status, 200, "{description}");
    client.close().await;
}
