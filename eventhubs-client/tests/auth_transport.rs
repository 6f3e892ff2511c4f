//! Credentials and transports the official SDKs offer, end to end against the emulator:
//! shared access signatures (in a connection string and as a credential), Entra ID tokens
//! through an `azure_core` `TokenCredential` (renewed before they expire), TLS with the
//! emulator's generated certificate, and custom endpoints.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use base64::Engine;
use eventhubs_client::{
    Credential, ErrorKind, EventData, EventHubClient, EventHubClientBuilder, ReceiverOptions, RetryOptions,
    StartPosition,
};
use eventhubs_emulator::tls::TlsIdentity;
use eventhubs_emulator::{Emulator, EmulatorHandle};

const HUB: &str = "orders";
const KEY_NAME: &str = "RootManageSharedAccessKey";

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn key_of(emulator: &EmulatorHandle) -> String {
    emulator.broker().config.sas_key.key.clone()
}

/// A shared access signature as the portal or `az eventhubs … generate-sas` makes one.
fn signature(resource: &str, key: &str, expiry: u64) -> String {
    let key = eventhubs_emulator::SasKey {
        name: KEY_NAME.to_owned(),
        key: key.to_owned(),
    };
    eventhubs_emulator::cbs::sas_token(resource, &key, i64::try_from(expiry).unwrap())
}

/// Few, quick retries: the failure tests should fail fast.
fn quick() -> RetryOptions {
    RetryOptions {
        max_retries: 1,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        try_timeout: Duration::from_secs(5),
    }
}

async fn round_trip(client: &EventHubClient, body: &str) {
    client.send(Some("0"), vec![EventData::new(body)]).await.unwrap();
    let mut receiver = client
        .open_receiver(
            "$default",
            "0",
            ReceiverOptions {
                start: StartPosition::Earliest,
                ..ReceiverOptions::default()
            },
        )
        .await
        .unwrap();
    let events = receiver.receive(10, Duration::from_secs(5)).await.unwrap();
    assert!(events.iter().any(|e| e.body == body.as_bytes()), "{events:?}");
}

#[tokio::test]
async fn a_shared_access_signature_works_from_a_connection_string_and_as_a_credential() {
    let emulator = Emulator::builder().hub(HUB, 1).start().await.unwrap();
    let port = emulator.local_addr().port();
    let key = key_of(&emulator);
    let token = signature(&format!("sb://localhost:{port}/{HUB}"), &key, now() + 600);
    let cs = format!(
        "Endpoint=sb://localhost:{port};SharedAccessSignature={token};UseDevelopmentEmulator=true;EntityPath={HUB}"
    );
    let client = EventHubClient::from_connection_string(&cs, None).await.unwrap();
    round_trip(&client, "by signature").await;
    assert!(!format!("{client:?}").contains(token.split("sig=").nth(1).unwrap()));

    let credential = Credential::shared_access_signature(token).unwrap();
    let client = EventHubClient::builder(&format!("localhost:{port}"), HUB, credential)
        .use_development_emulator(true)
        .open()
        .await
        .unwrap();
    assert_eq!(client.properties().await.unwrap().partition_ids, vec!["0"]);

    // Signed with another key: the service refuses it, and it is not retried.
    let forged = signature(
        &format!("sb://localhost:{port}/{HUB}"),
        "not-the-key",
        now() + 600,
    );
    let e = EventHubClient::builder(
        &format!("localhost:{port}"),
        HUB,
        Credential::shared_access_signature(forged).unwrap(),
    )
    .use_development_emulator(true)
    .retry_options(quick())
    .open()
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");

    // Signed for another hub: it does not cover this one.
    let other = signature(&format!("sb://localhost:{port}/payments"), &key, now() + 600);
    let e = EventHubClient::builder(
        &format!("localhost:{port}"),
        HUB,
        Credential::shared_access_signature(other).unwrap(),
    )
    .use_development_emulator(true)
    .retry_options(quick())
    .open()
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");

    // Expired: refused before anything is sent.
    let expired = signature(&format!("sb://localhost:{port}/{HUB}"), &key, now() - 1);
    let e = Credential::shared_access_signature(expired).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
}

/// Entra ID tokens as `azure_identity` credentials hand them out: unsigned JWTs here (the
/// emulator cannot verify a signature and must be told to accept them), each valid for
/// `lifetime`, counted.
#[derive(Debug)]
struct FakeEntraId {
    lifetime: u64,
    issued: AtomicUsize,
    fail: bool,
}

#[async_trait::async_trait]
impl TokenCredential for FakeEntraId {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        assert_eq!(scopes, ["https://eventhubs.azure.net/.default"]);
        if self.fail {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Credential,
                "no identity available",
            ));
        }
        self.issued.fetch_add(1, Ordering::SeqCst);
        let expires = now() + self.lifetime;
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let jwt = format!(
            "{}.{}.c2ln",
            enc(r#"{"alg":"RS256","typ":"JWT"}"#),
            enc(&format!(
                r#"{{"aud":"https://eventhubs.azure.net","exp":{expires}}}"#
            ))
        );
        let expires_on = time::OffsetDateTime::from_unix_timestamp(i64::try_from(expires).unwrap()).unwrap();
        Ok(AccessToken::new(jwt, expires_on))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entra_id_tokens_are_put_as_jwt_and_renewed_before_they_expire() {
    let emulator = Emulator::builder()
        .hub(HUB, 1)
        .accept_unverified_jwt(true)
        .start()
        .await
        .unwrap();
    let namespace = format!("localhost:{}", emulator.local_addr().port());
    let entra = Arc::new(FakeEntraId {
        lifetime: 4,
        issued: AtomicUsize::new(0),
        fail: false,
    });
    let client = EventHubClient::builder(&namespace, HUB, Credential::token_credential(entra.clone()))
        .use_development_emulator(true)
        .open()
        .await
        .unwrap();
    round_trip(&client, "by entra id").await;
    // Each token lives 4 s; for 9 s every management request (which needs a live grant)
    // succeeds, so fresh tokens were put before the old ones expired.
    let until = tokio::time::Instant::now() + Duration::from_secs(9);
    while tokio::time::Instant::now() < until {
        client.properties().await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let issued = entra.issued.load(Ordering::SeqCst);
    assert!(
        issued >= 3,
        "only {issued} tokens were asked for in 9 s of 4 s tokens"
    );

    // A credential that cannot give a token: Unauthorized, with the credential's reason.
    let failing = Arc::new(FakeEntraId {
        lifetime: 60,
        issued: AtomicUsize::new(0),
        fail: true,
    });
    let e = EventHubClient::builder(&namespace, HUB, Credential::token_credential(failing))
        .use_development_emulator(true)
        .retry_options(quick())
        .open()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().contains("no identity available"), "{e}");
}

#[tokio::test]
async fn an_emulator_that_cannot_verify_jwts_refuses_them_unless_told_otherwise() {
    let emulator = Emulator::builder().hub(HUB, 1).start().await.unwrap();
    let entra = Arc::new(FakeEntraId {
        lifetime: 60,
        issued: AtomicUsize::new(0),
        fail: false,
    });
    let e = EventHubClient::builder(
        &format!("localhost:{}", emulator.local_addr().port()),
        HUB,
        Credential::token_credential(entra),
    )
    .use_development_emulator(true)
    .retry_options(quick())
    .open()
    .await
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
}

async fn tls_emulator() -> (EmulatorHandle, TlsIdentity) {
    let identity = TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let emulator = Emulator::builder()
        .hub(HUB, 1)
        .tls(identity.clone())
        .start()
        .await
        .unwrap();
    (emulator, identity)
}

#[tokio::test]
async fn amqps_to_a_tls_listener_checks_its_certificate() {
    let (emulator, identity) = tls_emulator().await;
    let cs = emulator.connection_string(Some(HUB));
    assert!(!cs.contains("UseDevelopmentEmulator"), "{cs}");
    let client = EventHubClientBuilder::from_connection_string(&cs, None)
        .unwrap()
        .tls_root_certificates_pem(identity.certificate_pem())
        .open()
        .await
        .unwrap();
    round_trip(&client, "over tls").await;
    assert!(format!("{client:?}").contains("amqps://localhost:"), "{client:?}");

    // Without the emulator's root the certificate is not trusted: not retried.
    let e = EventHubClientBuilder::from_connection_string(&cs, None)
        .unwrap()
        .retry_options(quick())
        .open()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert!(e.to_string().contains("certificate"), "{e}");

    // Another server's certificate authority is not this one's.
    let stranger = TlsIdentity::self_signed(&["localhost"]).unwrap();
    let e = EventHubClientBuilder::from_connection_string(&cs, None)
        .unwrap()
        .tls_root_certificates_pem(stranger.certificate_pem())
        .retry_options(quick())
        .open()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");

    // Plain AMQP to a TLS port fails (retryably: it looks like a broken connection).
    let e = EventHubClientBuilder::from_connection_string(&cs, None)
        .unwrap()
        .use_development_emulator(true)
        .retry_options(quick())
        .open()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

/// A custom endpoint (a gateway or private link host): the connection goes there, the
/// namespace stays in AMQP and in the token's audience.
#[tokio::test]
async fn a_custom_endpoint_carries_the_connection_for_the_namespace() {
    // A certificate for `localhost` only.
    let identity = TlsIdentity::self_signed(&["localhost"]).unwrap();
    let emulator = Emulator::builder()
        .hub(HUB, 1)
        .tls(identity.clone())
        .start()
        .await
        .unwrap();
    let port = emulator.local_addr().port();
    let key = key_of(&emulator);
    let credential = Credential::shared_access_key(KEY_NAME, key.clone());
    // The namespace's own name does not resolve here; only the custom endpoint is reachable.
    let client = EventHubClient::builder("my-ns.servicebus.windows.net", HUB, credential.clone())
        .custom_endpoint(format!("amqps://localhost:{port}"))
        .tls_root_certificates_pem(identity.certificate_pem())
        .open()
        .await
        .unwrap();
    assert_eq!(client.fully_qualified_namespace(), "my-ns.servicebus.windows.net");
    round_trip(&client, "through the gateway").await;

    // The certificate is checked against the custom endpoint's host: 127.0.0.1 reaches the
    // same listener, but the certificate does not name it.
    let e = EventHubClient::builder("my-ns.servicebus.windows.net", HUB, credential)
        .custom_endpoint(format!("amqps://127.0.0.1:{port}"))
        .tls_root_certificates_pem(identity.certificate_pem())
        .retry_options(quick())
        .open()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");

    // Plain AMQP through a custom endpoint (the official Rust crate's way to an emulator).
    let plain = Emulator::builder().hub(HUB, 1).start().await.unwrap();
    let client = EventHubClient::builder(
        "my-ns.servicebus.windows.net",
        HUB,
        Credential::shared_access_key(KEY_NAME, key_of(&plain)),
    )
    .custom_endpoint(format!("amqp://127.0.0.1:{}", plain.local_addr().port()))
    .open()
    .await
    .unwrap();
    round_trip(&client, "plain through a custom endpoint").await;
}

/// AMQP over WebSockets, plain (`ws://`) and over TLS (`wss://`), as the official SDKs'
/// `AmqpWebSockets` transport: the emulator expects the HTTP upgrade on every connection.
#[tokio::test]
async fn amqp_over_websockets_plain_and_over_tls() {
    let plain = Emulator::builder()
        .hub(HUB, 1)
        .websockets(true)
        .start()
        .await
        .unwrap();
    let client = EventHubClientBuilder::from_connection_string(&plain.connection_string(Some(HUB)), None)
        .unwrap()
        .websockets(true)
        .open()
        .await
        .unwrap();
    assert!(format!("{client:?}").contains("ws://localhost:"), "{client:?}");
    round_trip(&client, "over ws").await;
    // Without the upgrade the listener does not speak AMQP.
    let e = EventHubClientBuilder::from_connection_string(&plain.connection_string(Some(HUB)), None)
        .unwrap()
        .retry_options(quick())
        .open()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");

    let identity = TlsIdentity::self_signed(&["localhost"]).unwrap();
    let secure = Emulator::builder()
        .hub(HUB, 1)
        .tls(identity.clone())
        .websockets(true)
        .start()
        .await
        .unwrap();
    let client = EventHubClientBuilder::from_connection_string(&secure.connection_string(Some(HUB)), None)
        .unwrap()
        .tls_root_certificates_pem(identity.certificate_pem())
        .websockets(true)
        .open()
        .await
        .unwrap();
    assert!(format!("{client:?}").contains("wss://localhost:"), "{client:?}");
    round_trip(&client, "over wss").await;
    let mut batch = client.create_batch(Default::default()).await.unwrap();
    for i in 0..50 {
        assert!(batch.try_add(&EventData::new(vec![i as u8; 4000])).unwrap());
    }
    client.send_batch(&batch).await.unwrap();
}
