//! Every load-balancing strategy side by side on the virtual-clock simulation (no AMQP, no
//! sleeping): cycles to full ownership, cycles to balance, partitions moved, for cold starts,
//! a joining processor, a leaving one and a crash, with staggered and simultaneous timers.
//!
//! `cargo run -p eventhubs-client --example load_balancing`

use eventhubs_client::processor::LoadBalancingStrategy;
use eventhubs_client::processor::simulation::{Report, Simulation, Timing};

fn cell(report: &Report) -> String {
    let c = |v: Option<usize>| v.map_or_else(|| ">50".to_owned(), |v| v.to_string());
    format!(
        "{:>4} {:>4} {:>5} {:>3}",
        c(report.cycles_to_owned),
        c(report.cycles_to_balanced),
        report.moves_to_balance,
        report.moves_after_balance
    )
}

fn main() {
    let strategies = [
        ("adaptive", LoadBalancingStrategy::Adaptive),
        ("balanced", LoadBalancingStrategy::Balanced),
        ("greedy", LoadBalancingStrategy::Greedy),
    ];
    println!(
        "columns per strategy: cycles to owned, cycles to balanced, moves until balanced, moves in the 20 cycles after"
    );
    for timing in [Timing::Staggered, Timing::SimultaneousStart, Timing::Simultaneous] {
        println!("\n{timing:?} timers");
        println!(
            "{:<28} {}",
            "scenario",
            strategies
                .iter()
                .map(|(n, _)| format!("{n:<20}"))
                .collect::<String>()
        );
        for (n, p) in [(4, 32), (8, 32), (16, 100), (32, 1024)] {
            let mut row = format!("{:<28}", format!("cold start {n}x{p}"));
            for (_, strategy) in strategies {
                let mut sim = Simulation::new(p, strategy, timing, 1);
                sim.join(n);
                row.push_str(&format!("{:<20}", cell(&sim.settle(1100))));
            }
            println!("{row}");
        }
        for (n, p) in [(4, 32), (16, 100)] {
            for (what, act) in [("one joins", 0), ("one leaves", 1)] {
                let mut row = format!("{:<28}", format!("{n}x{p}, {what}"));
                for (_, strategy) in strategies {
                    let mut sim = Simulation::new(p, strategy, timing, 2);
                    sim.join(n);
                    sim.settle(1100);
                    if act == 0 {
                        sim.join(1);
                    } else {
                        sim.leave();
                    }
                    row.push_str(&format!("{:<20}", cell(&sim.settle(1100))));
                }
                println!("{row}");
            }
            let mut row = format!("{:<28}", format!("{n}x{p}, one crashes"));
            for (_, strategy) in strategies {
                let mut sim = Simulation::new(p, strategy, timing, 3);
                sim.join(n);
                sim.settle(1100);
                sim.crash();
                let failover = sim.failover_cycles(1100);
                row.push_str(&format!(
                    "{:<20}",
                    format!(
                        "failover {} (expiry {})",
                        failover.map_or_else(|| "-".to_owned(), |c| c.to_string()),
                        sim.expiry_cycles()
                    )
                ));
            }
            println!("{row}");
        }
    }
}
