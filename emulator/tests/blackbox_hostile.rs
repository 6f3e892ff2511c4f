//! Black box: the emulator binary as a child process, attacked over TCP with every kind of
//! hostile input at once while a well-formed client keeps asking it questions. Each of the
//! client's round trips must finish within a second, and the child's resident memory must stay
//! under the bound the per-connection caps promise (`eventhubs_emulator::limits`).
//!
//! Prints what it measured: memory per idle connection, memory pinned per hostile connection of
//! each kind, and the well-formed client's slowest round trip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

mod common;

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::raw::{Script, put_token_message, put_token_message_with_id, zero_width_open};
use eventhubs_emulator::SasKey;
use eventhubs_emulator::broker::now_ms;
use eventhubs_emulator::cbs::sas_token;
use eventhubs_emulator::limits::{MAX_LINKS, MAX_REQUEST_SIZE, MAX_SESSIONS};
use fe2o3_amqp::types::messaging::{ApplicationProperties, Message, MessageId, Properties};
use fe2o3_amqp::types::primitives::{SimpleValue, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Most resident memory one hostile connection may add, whatever it sends: the caps of
/// `eventhubs_emulator::limits` (the largest, 2048 grants of 2 KiB audiences, is about 4.5 MiB)
/// with room for the allocator.
const MIB_PER_HOSTILE_CONNECTION: u64 = 6;
/// Most resident memory one idle connection may add.
const KIB_PER_IDLE_CONNECTION: u64 = 256;

struct Emulator {
    child: Child,
    addr: SocketAddr,
    // Kept open: the emulator prints more lines, and a closed pipe would kill it.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Emulator {
    fn start() -> Self {
        // EVENTHUBS_EMULATOR_BIN runs another build (an older one, to see what the caps change).
        let binary = std::env::var("EVENTHUBS_EMULATOR_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_eventhubs-emulator").to_owned());
        let mut child = Command::new(binary)
            .args(["--port", "0", "--hub", "orders:4"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the emulator binary starts");
        let mut line = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let port: u16 = line
            .split("sb://localhost:")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Emulator {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _stdout: stdout,
        }
    }

    /// Resident memory in KiB (VmRSS).
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A well-formed client on its own thread and runtime: SASL ANONYMOUS, a put-token, then a
/// `$management` READ every 50 ms until stopped. Returns the slowest round trip and the count.
fn probe(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Duration, usize)> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let url = format!("amqp://{addr}");
            let mut connection = fe2o3_amqp::Connection::builder()
                .container_id("probe")
                .sasl_profile(fe2o3_amqp::sasl_profile::SaslProfile::Anonymous)
                .open(url.as_str())
                .await
                .expect("the probe connects");
            let mut session = fe2o3_amqp::Session::begin(&mut connection).await.unwrap();
            let token = sas_token("sb://localhost/", &SasKey::default(), now_ms() / 1000 + 3600);
            let (mut slowest, mut count) = (Duration::ZERO, 0usize);
            let mut cbs = request_link(&mut session, "$cbs").await;
            let status = round_trip(
                &mut cbs,
                &[
                    ("operation", "put-token"),
                    ("type", "servicebus.windows.net:sastoken"),
                    ("name", "sb://localhost/"),
                ],
                Value::String(token),
            )
            .await;
            assert_eq!(status, 202);
            let mut management = request_link(&mut session, "$management").await;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let status = tokio::time::timeout(
                    Duration::from_secs(10),
                    round_trip(
                        &mut management,
                        &[
                            ("operation", "READ"),
                            ("name", "orders"),
                            ("type", "com.microsoft:eventhub"),
                        ],
                        Value::Null,
                    ),
                )
                .await
                .expect("the emulator answers within 10 s");
                assert_eq!(status, 200);
                slowest = slowest.max(started.elapsed());
                count += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (slowest, count)
        })
    })
}

type Link = (fe2o3_amqp::Sender, fe2o3_amqp::Receiver, String);

async fn request_link(session: &mut fe2o3_amqp::session::SessionHandle<()>, node: &str) -> Link {
    let reply_to = format!("{node}-probe-reply");
    let sender = fe2o3_amqp::Sender::attach(session, format!("{node}-probe"), node)
        .await
        .unwrap();
    let receiver = fe2o3_amqp::Receiver::builder()
        .name(format!("{node}-probe-r"))
        .source(node)
        .target(reply_to.as_str())
        .attach(session)
        .await
        .unwrap();
    (sender, receiver, reply_to)
}

async fn round_trip((sender, receiver, reply_to): &mut Link, props: &[(&str, &str)], body: Value) -> i32 {
    let mut app = ApplicationProperties::builder();
    for (k, v) in props {
        app = app.insert(*k, *v);
    }
    let message = Message::builder()
        .properties(
            Properties::builder()
                .message_id(MessageId::from(1u64))
                .reply_to(reply_to.clone())
                .build(),
        )
        .application_properties(app.build())
        .value(body)
        .build();
    sender.send(message).await.unwrap();
    let delivery = receiver.recv::<Value>().await.unwrap();
    receiver.accept(&delivery).await.unwrap();
    match delivery
        .message()
        .application_properties
        .as_ref()
        .and_then(|a| a.0.get("status-code"))
    {
        Some(SimpleValue::Int(code)) => *code,
        other => panic!("status-code {other:?}"),
    }
}

/// Opens a connection and sends `script`, keeping the socket open. The emulator may close it
/// midway (a cap was hit): what could not be written is dropped.
async fn hold(addr: SocketAddr, script: &Script) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(&script.bytes).await;
    stream
}

/// Each kind of hostile connection, as the bytes it sends.
fn attacks() -> Vec<(&'static str, Script)> {
    let mut out = Vec::new();
    // Arrays of 2^32 - 1 nulls in an open: refused at once.
    let mut stall = Script {
        bytes: b"AMQP\x00\x01\x00\x00".to_vec(),
    };
    eventhubs_emulator::wire::frame::encode_frame(&mut stall.bytes, 0, 0, &[&zero_width_open()]);
    out.push(("zero-width arrays", stall));
    // Unfinished $cbs deliveries, a megabyte on each of 20 links, without any token (before
    // the caps, each link kept up to 1 MiB: 64 links pinned 65 MiB).
    let mut partial = Script::opened(256 * 1024);
    partial.begin(0);
    let chunk = vec![0x41u8; 60 * 1024];
    for handle in 0..20u32 {
        partial.attach(0, handle, &format!("p{handle}"), "$cbs", true);
        for _ in 0..17 {
            partial.transfer(0, handle, handle, true, &chunk);
        }
    }
    out.push(("unfinished requests", partial));
    // Requests whose answers are never read (no credit on the reply links), each answer
    // echoing a 12 KiB message-id, over 16 reply links.
    let mut unread = Script::opened(256 * 1024);
    unread.begin(0).attach(0, 0, "c", "$cbs", true);
    for handle in 1..=16u32 {
        unread.attach(0, handle, &format!("r{handle}"), "$cbs", false);
    }
    let id = Value::String("i".repeat(12 * 1024));
    for i in 0..4000u32 {
        unread.transfer(
            0,
            0,
            i,
            false,
            &put_token_message_with_id(id.clone(), "sb://localhost/orders", "garbage"),
        );
    }
    out.push(("unread responses", unread));
    // Grants: more distinct audiences than the cap, and audiences far longer than allowed
    // (before the caps, 335 tokens with 200 kB audiences pinned 59 MiB).
    let token = sas_token("sb://localhost/", &SasKey::default(), now_ms() / 1000 + 3600);
    let mut grants = Script::opened(256 * 1024);
    grants
        .begin(0)
        .attach(0, 0, "c", "$cbs", true)
        .attach(0, 1, "r", "$cbs", false);
    let total = eventhubs_emulator::auth::MAX_GRANTS as u32 + 50;
    for i in 0..total {
        let audience = format!("sb://localhost/{i}{}", "g".repeat(2000));
        grants.transfer(
            0,
            0,
            i,
            false,
            &put_token_message(u64::from(i), &audience, &token),
        );
    }
    for i in total..total + 1000 {
        let audience = format!("sb://localhost/{i}{}", "h".repeat(MAX_REQUEST_SIZE - 1024));
        grants.transfer(
            0,
            0,
            i,
            false,
            &put_token_message(u64::from(i), &audience, &token),
        );
    }
    out.push(("grants", grants));
    // The most links, and one more.
    let mut links = Script::opened(256 * 1024);
    for channel in 0..5u16 {
        links.begin(channel);
    }
    for n in 0..=MAX_LINKS as u32 {
        links.attach((n / 1024) as u16, n % 1024, &format!("l{n}"), "$cbs", false);
    }
    out.push(("links", links));
    // The most sessions, and more.
    let mut sessions = Script::opened(64 * 1024);
    for channel in 0..(MAX_SESSIONS as u16 + 10) {
        sessions.begin(channel);
    }
    out.push(("sessions", sessions));
    // A frame announcing 256 KiB that never arrives.
    let mut torn = Script::opened(64 * 1024);
    torn.bytes.extend_from_slice(&[0, 4, 0, 0, 2, 0, 0, 0]);
    torn.bytes.extend(vec![0u8; 1000]);
    out.push(("torn frame", torn));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_connections_neither_stall_the_emulator_nor_grow_its_memory_beyond_the_caps() {
    let emulator = Emulator::start();
    let stop = Arc::new(AtomicBool::new(false));
    let prober = probe(emulator.addr, Arc::clone(&stop));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = emulator.rss_kib();

    // Idle connections: header and open only.
    let idle_count = 200;
    let mut idle = Vec::new();
    for _ in 0..idle_count {
        idle.push(hold(emulator.addr, &Script::opened(64 * 1024)).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_idle = emulator.rss_kib();
    let per_idle = with_idle.saturating_sub(baseline) / idle_count;
    println!("baseline {baseline} KiB; {idle_count} idle connections: {with_idle} KiB ({per_idle} KiB each)");
    assert!(
        per_idle <= KIB_PER_IDLE_CONNECTION,
        "{per_idle} KiB per idle connection"
    );

    // Every attack, four connections of each kind, held open together.
    let mut held = Vec::new();
    let mut hostile = 0u64;
    for (kind, script) in attacks() {
        let before = emulator.rss_kib();
        for _ in 0..4 {
            held.push(hold(emulator.addr, &script).await);
            hostile += 1;
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
        let after = emulator.rss_kib();
        let each = after.saturating_sub(before) / 4;
        println!(
            "{kind}: 4 connections of {} KiB sent, {} KiB more resident ({each} KiB each)",
            script.bytes.len() / 1024,
            after.saturating_sub(before),
        );
        assert!(
            each <= MIB_PER_HOSTILE_CONNECTION * 1024,
            "{kind}: {each} KiB resident per connection, above {MIB_PER_HOSTILE_CONNECTION} MiB"
        );
    }
    let peak = emulator.rss_kib();
    let bound = with_idle + hostile * MIB_PER_HOSTILE_CONNECTION * 1024;
    println!(
        "with {hostile} hostile connections held: {peak} KiB ({} KiB over the idle level; bound {} KiB)",
        peak.saturating_sub(with_idle),
        bound - with_idle
    );
    assert!(
        peak <= bound,
        "{peak} KiB resident, above the bound of {bound} KiB"
    );

    stop.store(true, Ordering::Relaxed);
    let (slowest, count) = prober.join().expect("the probe ran");
    println!("well-formed client: {count} round trips during the attacks, slowest {slowest:?}");
    assert!(count >= 10, "the probe ran only {count} round trips");
    assert!(slowest < Duration::from_secs(1), "a round trip took {slowest:?}");
    drop(held);
    drop(idle);
}
