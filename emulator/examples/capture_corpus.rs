//! Records what real clients send the emulator and writes it as the fuzzing seed corpus
//! (`emulator/fuzz/corpus/<target>/`): whole connections for `frames`, each frame body for
//! `performative`, transfer payloads for `message`, sasl-init bodies for `sasl`, and the
//! requests on `$cbs` and `$management` links for `cbs` and `management`.
//!
//! ```text
//! cargo run -p eventhubs-emulator --example capture_corpus -- emulator/fuzz/corpus [python]
//! ```
//!
//! The clients: fe2o3-amqp (the transport of our client) doing CBS, management reads, sends of
//! single events, batches and partition-keyed events, and receives with filters and an owner
//! level; and, when a Python interpreter with `azure-eventhub` is given, the official Python
//! client doing the same through `emulator/tests/python/capture_session.py`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{Client, batch, event};
use eventhubs_emulator::Emulator;
use eventhubs_emulator::wire::performative::decode_performative;
use fe2o3_amqp::types::performatives::Performative;
use fe2o3_amqp::types::primitives::Value;
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Captured = Arc<Mutex<Vec<Vec<u8>>>>;

/// Forwards every connection to `upstream`, recording what each client sent.
async fn proxy(listener: TcpListener, upstream: SocketAddr, captured: Captured) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let captured = Arc::clone(&captured);
        tokio::spawn(async move {
            let server = TcpStream::connect(upstream).await.expect("emulator");
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let down = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut sr, &mut cw).await;
            });
            let mut sent = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match cr.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        sent.extend_from_slice(&buf[..n]);
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            }
            let _ = sw.shutdown().await;
            let _ = down.await;
            captured.lock().unwrap().push(sent);
        });
    }
}

async fn rust_sessions(emulator: &eventhubs_emulator::EmulatorHandle, proxy: SocketAddr) {
    // The common client connects to `emulator.local_addr()`: point a twin handle's address at
    // the proxy by connecting through a URL instead.
    let url = format!("amqp://{proxy}");
    for profile in [
        fe2o3_amqp::sasl_profile::SaslProfile::Anonymous,
        fe2o3_amqp::sasl_profile::SaslProfile::Plain {
            username: "RootManageSharedAccessKey".into(),
            password: "SAS_KEY_VALUE".into(),
        },
    ] {
        let mut connection = fe2o3_amqp::Connection::builder()
            .container_id("capture")
            .sasl_profile(profile)
            .open(url.as_str())
            .await
            .expect("connects through the proxy");
        let session = fe2o3_amqp::Session::begin(&mut connection)
            .await
            .expect("session");
        let mut client = Client { connection, session };
        let (status, _) = client.put_token(emulator, "sb://localhost/orders").await;
        assert_eq!(status, 202);
        let _ = client
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
        let _ = client
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
        let mut sender = client.sender("orders").await;
        sender.send(event("plain", None)).await.expect("send");
        sender
            .send(event("keyed", Some("customer-42")))
            .await
            .expect("send");
        sender
            .send(batch(&["a", "b", "c"], Some("k")))
            .await
            .expect("batch");
        let mut partition = client.sender("orders/Partitions/0").await;
        partition
            .send(event(&"x".repeat(3000), None))
            .await
            .expect("send");
        let filter = (
            Value::Symbol("apache.org:selector-filter:string".into()),
            "amqp.annotation.x-opt-sequence-number > '-1'",
        );
        let mut receiver = client
            .receiver(
                "orders/ConsumerGroups/$default/Partitions/0",
                Some(filter),
                Some(7),
                &["com.microsoft:enable-receiver-runtime-metric"],
            )
            .await
            .expect("receiver");
        let _ = common::recv(&mut receiver).await;
        let _ = receiver.close().await;
        let _ = sender.close().await;
        let _ = partition.close().await;
        client.close().await;
    }
}

/// Splits one connection's bytes into (sasl bodies, amqp stream after its header, frame bodies).
fn split(connection: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>, Vec<Vec<u8>>) {
    let mut sasl = Vec::new();
    let mut at = 0;
    let mut amqp_start = None;
    let mut bodies = Vec::new();
    while at + 8 <= connection.len() {
        if connection[at..].starts_with(b"AMQP") {
            if connection[at + 4] == 0 {
                amqp_start = Some(at + 8);
            }
            at += 8;
            continue;
        }
        let size = u32::from_be_bytes(connection[at..at + 4].try_into().unwrap()) as usize;
        if size < 8 || at + size > connection.len() {
            break;
        }
        let doff = usize::from(connection[at + 4]) * 4;
        let body = connection[at + doff..at + size].to_vec();
        if connection[at + 5] == 1 {
            sasl.push(body);
        } else if !body.is_empty() {
            bodies.push(body);
        }
        at += size;
    }
    let stream = amqp_start.map(|s| connection[s..].to_vec()).unwrap_or_default();
    (sasl, stream, bodies)
}

fn write(dir: &Path, items: impl IntoIterator<Item = Vec<u8>>) -> usize {
    std::fs::create_dir_all(dir).unwrap();
    let mut seen = BTreeSet::new();
    for item in items {
        let name = hex(&sha2::Sha256::digest(&item)[..8]);
        if seen.insert(name.clone()) {
            std::fs::write(dir.join(name), &item).unwrap();
        }
    }
    seen.len()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let out = PathBuf::from(args.next().unwrap_or_else(|| "emulator/fuzz/corpus".into()));
    let python = args.next();
    let emulator = Emulator::builder().hub("orders", 4).start().await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    let captured: Captured = Arc::default();
    tokio::spawn(proxy(listener, emulator.local_addr(), Arc::clone(&captured)));

    rust_sessions(&emulator, proxy_addr).await;
    if let Some(python) = python {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/capture_session.py");
        let connection_string = eventhubs_emulator::config::connection_string(
            proxy_addr.port(),
            &eventhubs_emulator::SasKey::default(),
            Some("orders"),
            false,
        );
        let status = tokio::process::Command::new(python)
            .arg(script)
            .arg(connection_string)
            .status()
            .await
            .expect("python runs");
        assert!(status.success(), "the Python session failed");
    }
    // Let the proxy record the last connections.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let connections = captured.lock().unwrap().clone();

    let (mut sasl, mut streams, mut bodies) = (Vec::new(), Vec::new(), Vec::new());
    let (mut messages, mut cbs, mut management) = (Vec::new(), Vec::new(), Vec::new());
    for connection in &connections {
        let (s, stream, b) = split(connection);
        sasl.extend(s);
        streams.push(stream);
        // Link handles to their node, per channel, to classify transfers.
        let mut nodes: HashMap<(u32, u32), String> = HashMap::new();
        for body in &b {
            let channel = 0; // channels are reused per connection; handles differ per session
            if let Ok((performative, payload)) = decode_performative(body) {
                match performative {
                    Performative::Attach(attach) => {
                        let address = attach
                            .target
                            .as_deref()
                            .and_then(|t| match t {
                                fe2o3_amqp::types::messaging::TargetArchetype::Target(t) => t.address.clone(),
                                #[allow(unreachable_patterns)]
                                _ => None,
                            })
                            .unwrap_or_default();
                        nodes.insert((channel, attach.handle.0), address);
                    }
                    Performative::Transfer(transfer) if !payload.is_empty() => {
                        match nodes.get(&(channel, transfer.handle.0)).map(String::as_str) {
                            Some("$cbs") => cbs.push(payload.to_vec()),
                            Some("$management") => management.push(payload.to_vec()),
                            _ => messages.push(payload.to_vec()),
                        }
                    }
                    _ => {}
                }
            }
        }
        bodies.extend(b);
    }
    let counts = [
        ("frames", write(&out.join("frames"), streams)),
        ("performative", write(&out.join("performative"), bodies)),
        ("message", write(&out.join("message"), messages)),
        ("sasl", write(&out.join("sasl"), sasl)),
        ("cbs", write(&out.join("cbs"), cbs)),
        ("management", write(&out.join("management"), management)),
    ];
    println!("{} connections captured", connections.len());
    for (target, n) in counts {
        println!("{target}: {n} seeds");
    }
    emulator.shutdown().await;
}
