//! `ehstore demo`: three processors share the eight partitions of an event hub through a store,
//! in a few seconds, and every step goes through the public store API:
//!
//! 1. `alpha` starts alone and claims all eight partitions (creates, rule C3);
//! 2. `bravo` and `charlie` join; each takes its fair share by stealing from the busiest owner,
//!    whose next renewal loses (etags, C4) — the load is balanced 3/3/2;
//! 3. `charlie` crashes (stops renewing); after the expiry its partitions are taken over and
//!    the new owners resume from its checkpoints;
//! 4. the paused `charlie` wakes up as a zombie and tries to checkpoint: refused (fencing, C13);
//! 5. `bravo` shuts down cleanly and relinquishes (C8); `alpha` takes over at once;
//! 6. the final status table.
//!
//! With no options it uses `sqlite:ehstore-demo.db` in the current directory, so
//! `ehstore status sqlite:ehstore-demo.db …` shows the same records afterwards, and a second run
//! resumes from the first one's checkpoints.

mod processor;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use eventhubs_store_core::{CheckpointStore, PartitionScope, Result};

use crate::cli::DemoArgs;
use crate::commands::out;
use crate::commands::status::{collect, render};
use crate::duration::format_duration;
use crate::open::{OpenOptions, open_store_with};
use crate::redact::redact_url;

pub use processor::{SimProcessor, fair_share};

/// The demo's event hub.
pub const DEMO_NAMESPACE: &str = "demo.servicebus.windows.net";
/// The demo's event hub name.
pub const DEMO_HUB: &str = "orders";
/// Partitions of the demo hub.
pub const DEMO_PARTITIONS: usize = 8;
/// Cycles a phase may take before the demo gives up on it (a store too slow for the interval).
const MAX_CYCLES_PER_PHASE: usize = 60;

struct Demo {
    store: Arc<dyn CheckpointStore>,
    scope: PartitionScope,
    args: DemoArgs,
    started: Instant,
    running: Vec<SimProcessor>,
}

impl Demo {
    fn say(&self, who: &str, what: &str) {
        out(&format!(
            "[{:>5.2}s] {who:<8} {what}",
            self.started.elapsed().as_secs_f64()
        ));
    }

    fn join(&mut self, id: &str) {
        let partitions = (0..DEMO_PARTITIONS).map(|p| p.to_string()).collect();
        let p = SimProcessor::new(
            id,
            self.store.clone(),
            self.scope.clone(),
            partitions,
            self.args.expiry,
        );
        self.say(id, "starts");
        self.running.push(p);
    }

    /// One tick: every running processor runs a load-balancing cycle and processes a batch, one
    /// after the other (real processors' jittered timers rarely fire at the same instant; the
    /// conformance suite is where claims race).
    async fn tick(&mut self) -> Result<()> {
        for i in 0..self.running.len() {
            let p = &mut self.running[i];
            let mut notes = p.cycle().await?;
            notes.extend(p.process().await?);
            let who = p.id.clone();
            for note in notes {
                self.say(&who, &note);
            }
        }
        tokio::time::sleep(self.args.interval).await;
        Ok(())
    }

    /// Ticks until `done` holds for the running processors (or the phase's cycle budget ends).
    async fn run_until(&mut self, done: impl Fn(&[SimProcessor]) -> bool) -> Result<bool> {
        for _ in 0..MAX_CYCLES_PER_PHASE {
            self.tick().await?;
            if done(&self.running) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn shares(&self) -> String {
        let parts: Vec<String> = self
            .running
            .iter()
            .map(|p| format!("{} {}", p.id, p.owned_count()))
            .collect();
        parts.join(", ")
    }

    fn take(&mut self, id: &str) -> Option<SimProcessor> {
        let i = self.running.iter().position(|p| p.id == id)?;
        Some(self.running.remove(i))
    }
}

fn balanced(ps: &[SimProcessor]) -> bool {
    let (min, max) = fair_share(DEMO_PARTITIONS, ps.len());
    let total: usize = ps.iter().map(SimProcessor::owned_count).sum();
    total == DEMO_PARTITIONS && ps.iter().all(|p| (min..=max).contains(&p.owned_count()))
}

/// Runs `ehstore demo`.
///
/// # Errors
/// The store's.
pub async fn run(args: DemoArgs) -> Result<ExitCode> {
    let store = open_store_with(&args.store, &OpenOptions::prepared()).await?;
    let scope = PartitionScope::new(DEMO_NAMESPACE, DEMO_HUB, "$Default")?;
    out(&format!(
        "ehstore demo: 3 processors share the {DEMO_PARTITIONS} partitions of {scope}\n\
         store: {} ({}); ownership expires {} after its last renewal; a load-balancing cycle every {}\n",
        redact_url(&args.store),
        store.backend_name(),
        format_duration(args.expiry),
        format_duration(args.interval),
    ));
    let mut demo = Demo {
        store: store.clone(),
        scope: scope.clone(),
        args,
        started: Instant::now(),
        running: Vec::new(),
    };

    demo.join("alpha");
    let ok = demo.run_until(balanced).await?;
    report_phase(&demo, ok, "alpha holds every partition");
    demo.join("bravo");
    demo.join("charlie");
    let ok = demo.run_until(balanced).await?;
    report_phase(&demo, ok, &format!("balanced: {}", demo.shares()));

    let mut zombie = demo.take("charlie");
    demo.say(
        "charlie",
        &format!(
            "crashes: stops renewing; its partitions free up {} after its last renewal",
            format_duration(demo.args.expiry)
        ),
    );
    let ok = demo.run_until(balanced).await?;
    report_phase(
        &demo,
        ok,
        &format!("charlie's partitions taken over: {}", demo.shares()),
    );

    if let Some(z) = zombie.as_mut() {
        if store.capabilities().fenced_checkpoints {
            demo.say(
                "charlie",
                "wakes up as a zombie and tries to checkpoint what it thinks it owns",
            );
            for note in z.process().await? {
                demo.say("charlie", &note);
            }
        } else {
            demo.say(
                "-",
                "(this store has no fenced checkpoints, C13: a zombie's checkpoint would land)",
            );
        }
    }

    if let Some(mut bravo) = demo.take("bravo") {
        for note in bravo.close().await? {
            demo.say("bravo", &note);
        }
    }
    let ok = demo.run_until(balanced).await?;
    report_phase(&demo, ok, &format!("alpha took over at once: {}", demo.shares()));

    let status = collect(store.as_ref(), &scope, demo.args.expiry).await?;
    out(&format!(
        "\nfinal state (expiry {}):",
        format_duration(demo.args.expiry)
    ));
    out(render(&status).trim_end());
    out(&format!(
        "\nlook again any time:\n  ehstore status {} --namespace {DEMO_NAMESPACE} --hub {DEMO_HUB}",
        redact_url(&demo.args.store)
    ));
    Ok(ExitCode::SUCCESS)
}

fn report_phase(demo: &Demo, reached: bool, what: &str) {
    if reached {
        demo.say("-", what);
    } else {
        demo.say(
            "-",
            &format!(
                "not settled after {MAX_CYCLES_PER_PHASE} cycles ({}); the store may be slower than the interval",
                demo.shares()
            ),
        );
    }
}
