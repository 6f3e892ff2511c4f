//! `ehstore status` (alias `list`): who owns each partition, since when, whether that ownership
//! has expired, and the checkpoint.
//!
//! Ownership is *expired* when its last renewal is older than `--expiry` (60 s by default, the
//! Processor's default): another processor may then take the partition.
//! A relinquished ownership (owner `""`, rule C8) is free at once.

use std::collections::BTreeSet;
use std::process::ExitCode;
use std::time::Duration;

use eventhubs_store_core::{Checkpoint, CheckpointStore, Ownership, PartitionScope, Result};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::lag::{PartitionLag, partition_lag};
use crate::cli::StatusArgs;
use crate::commands::{client_error, out, scopes_of};
use crate::duration::format_duration;
use crate::open::open_store_with;
use crate::table::{Align, Table, partition_order};

/// Whether a partition is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnershipState {
    /// Held: a non-empty owner renewed within the expiry.
    Owned,
    /// The owner stopped renewing; free to take.
    Expired,
    /// Released by its owner (C8); free to take.
    Relinquished,
    /// No ownership record.
    Unowned,
}

impl OwnershipState {
    /// The word shown in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnershipState::Owned => "owned",
            OwnershipState::Expired => "expired",
            OwnershipState::Relinquished => "relinquished",
            OwnershipState::Unowned => "unowned",
        }
    }

    /// True only for [`OwnershipState::Owned`].
    pub fn is_held(self) -> bool {
        self == OwnershipState::Owned
    }
}

/// The state of `ownership` at `now` with `expiry`, and its age.
pub fn ownership_state(
    ownership: Option<&Ownership>,
    now: OffsetDateTime,
    expiry: Duration,
) -> (OwnershipState, Option<Duration>) {
    let Some(o) = ownership else {
        return (OwnershipState::Unowned, None);
    };
    let age = o
        .last_modified_time
        .map(|t| Duration::try_from(now - t).unwrap_or(Duration::ZERO));
    let state = if o.owner_id.is_empty() {
        OwnershipState::Relinquished
    } else if age.is_none_or(|a| a >= expiry) {
        OwnershipState::Expired
    } else {
        OwnershipState::Owned
    };
    (state, age)
}

/// One partition's line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartitionStatus {
    /// Partition id.
    pub partition_id: String,
    /// Owner id (`""` relinquished), `None` without ownership record.
    pub owner_id: Option<String>,
    /// Owned, expired, relinquished or unowned.
    pub state: OwnershipState,
    /// Milliseconds since the last claim or renewal.
    pub ownership_age_ms: Option<u64>,
    /// The store's time of the last claim (RFC 3339).
    pub last_modified_time: Option<String>,
    /// The ownership etag.
    pub etag: Option<String>,
    /// Checkpoint sequence number.
    pub sequence_number: Option<i64>,
    /// Checkpoint offset.
    pub offset: Option<String>,
    /// The hub's side, with `--connection-string`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub lag: Option<PartitionLag>,
}

/// One scope's partitions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScopeStatus {
    /// Fully qualified namespace.
    pub namespace: String,
    /// Event hub.
    pub event_hub: String,
    /// Consumer group.
    pub consumer_group: String,
    /// Every partition with an ownership or a checkpoint, in partition order.
    pub partitions: Vec<PartitionStatus>,
}

/// Reads a scope's ownership and checkpoints and joins them per partition.
///
/// # Errors
/// The store's.
pub async fn collect(
    store: &dyn CheckpointStore,
    scope: &PartitionScope,
    expiry: Duration,
) -> Result<ScopeStatus> {
    let owners = store.list_ownership(scope).await?;
    let checkpoints = store.list_checkpoints(scope).await?;
    Ok(join(
        scope,
        &owners,
        &checkpoints,
        &[],
        OffsetDateTime::now_utc(),
        expiry,
    ))
}

/// Why [`collect_with_lag`] failed: the store or the hub, each with its own error.
#[derive(Debug, thiserror::Error)]
pub enum LagError {
    /// The checkpoint store.
    #[error(transparent)]
    Store(#[from] eventhubs_store_core::Error),
    /// The event hub.
    #[error("event hubs: {0}")]
    Hub(#[from] eventhubs_client::Error),
}

impl From<LagError> for eventhubs_store_core::Error {
    fn from(e: LagError) -> Self {
        match e {
            LagError::Store(e) => e,
            LagError::Hub(e) => client_error(&e),
        }
    }
}

/// [`collect`] plus the hub's side: every partition of the hub (and any other the store
/// holds), each with its lag. Partitions are asked concurrently.
///
/// # Errors
/// The store's, and the hub's when its properties cannot be read.
pub async fn collect_with_lag(
    store: &dyn CheckpointStore,
    client: &eventhubs_client::EventHubClient,
    scope: &PartitionScope,
    expiry: Duration,
) -> std::result::Result<ScopeStatus, LagError> {
    let hub = client.properties().await?;
    let owners = store.list_ownership(scope).await?;
    let checkpoints = store.list_checkpoints(scope).await?;
    let mut status = join(
        scope,
        &owners,
        &checkpoints,
        &hub.partition_ids,
        OffsetDateTime::now_utc(),
        expiry,
    );
    let lags = futures::future::join_all(status.partitions.iter().map(|p| {
        let checkpoint = checkpoints.iter().find(|c| c.partition_id == p.partition_id);
        let known = hub.partition_ids.contains(&p.partition_id);
        async move {
            if !known {
                return Ok(None);
            }
            partition_lag(
                client,
                scope.consumer_group(),
                &p.partition_id,
                checkpoint,
                p.state,
            )
            .await
            .map(Some)
        }
    }))
    .await;
    for (p, lag) in status.partitions.iter_mut().zip(lags) {
        p.lag = lag?;
    }
    Ok(status)
}

/// One row per partition that has an ownership or a checkpoint, or is among `also` (the hub's
/// partitions), in partition order.
fn join(
    scope: &PartitionScope,
    owners: &[Ownership],
    checkpoints: &[Checkpoint],
    also: &[String],
    now: OffsetDateTime,
    expiry: Duration,
) -> ScopeStatus {
    let ids: BTreeSet<&str> = owners
        .iter()
        .map(|o| o.partition_id.as_str())
        .chain(checkpoints.iter().map(|c| c.partition_id.as_str()))
        .chain(also.iter().map(String::as_str))
        .collect();
    let mut ids: Vec<&str> = ids.into_iter().collect();
    ids.sort_by(|a, b| partition_order(a, b));
    let partitions = ids
        .into_iter()
        .map(|id| {
            let o = owners.iter().find(|o| o.partition_id == id);
            let c = checkpoints.iter().find(|c| c.partition_id == id);
            let (state, age) = ownership_state(o, now, expiry);
            PartitionStatus {
                partition_id: id.to_owned(),
                owner_id: o.map(|o| o.owner_id.clone()),
                state,
                ownership_age_ms: age.map(|a| u64::try_from(a.as_millis()).unwrap_or(u64::MAX)),
                last_modified_time: o
                    .and_then(|o| o.last_modified_time)
                    .and_then(|t| t.format(&Rfc3339).ok()),
                etag: o.and_then(|o| o.etag.as_ref()).map(|e| e.as_str().to_owned()),
                sequence_number: c.and_then(|c| c.sequence_number),
                offset: c.and_then(|c| c.offset.clone()),
                lag: None,
            }
        })
        .collect();
    ScopeStatus {
        namespace: scope.namespace().to_owned(),
        event_hub: scope.event_hub().to_owned(),
        consumer_group: scope.consumer_group().to_owned(),
        partitions,
    }
}

/// The readable form: a title line and a table.
pub fn render(status: &ScopeStatus) -> String {
    let mut text = format!(
        "{}/{}/{}: {} partition(s)\n",
        status.namespace,
        status.event_hub,
        status.consumer_group,
        status.partitions.len()
    );
    let mut table = Table::new(&[
        ("PARTITION", Align::Left),
        ("OWNER", Align::Left),
        ("AGE", Align::Right),
        ("STATE", Align::Left),
        ("SEQUENCE", Align::Right),
        ("OFFSET", Align::Left),
    ]);
    for p in &status.partitions {
        let owner = match p.owner_id.as_deref() {
            None => "-".to_owned(),
            Some("") => "(none)".to_owned(),
            Some(o) => o.to_owned(),
        };
        table.row(vec![
            p.partition_id.clone(),
            owner,
            p.ownership_age_ms
                .map_or("-".into(), |ms| format_duration(Duration::from_millis(ms))),
            p.state.as_str().to_owned(),
            p.sequence_number.map_or("-".into(), |s| s.to_string()),
            p.offset.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    if table.is_empty() {
        text.push_str("  (no ownership and no checkpoints)\n");
    } else {
        text.push_str(&table.render(2));
    }
    if status.partitions.iter().any(|p| p.lag.is_some()) {
        text.push_str(&render_lag(status));
    }
    text
}

/// The hub's side, one row per partition, and a total line.
fn render_lag(status: &ScopeStatus) -> String {
    let mut table = Table::new(&[
        ("PARTITION", Align::Left),
        ("RETAINED", Align::Right),
        ("LAST ENQUEUED", Align::Left),
        ("LAG", Align::Right),
        ("LAG TIME", Align::Right),
        ("LOST", Align::Right),
        ("VERDICT", Align::Left),
    ]);
    let (mut total, mut lost) = (0i64, 0i64);
    for p in &status.partitions {
        let Some(lag) = &p.lag else { continue };
        total += lag.lag_events;
        lost += lag.lost_to_retention;
        table.row(vec![
            p.partition_id.clone(),
            if lag.last_enqueued_sequence_number < lag.beginning_sequence_number {
                "none".to_owned()
            } else {
                format!(
                    "{}..{}",
                    lag.beginning_sequence_number, lag.last_enqueued_sequence_number
                )
            },
            lag.last_enqueued_time.clone().unwrap_or_else(|| "-".into()),
            lag.lag_events.to_string(),
            lag.lag_ms
                .map_or_else(|| "?".into(), |ms| format_duration(Duration::from_millis(ms))),
            lag.lost_to_retention.to_string(),
            lag.lag_state.as_str().to_owned(),
        ]);
    }
    format!(
        "\n  hub side: {total} event(s) to process, {lost} lost to retention\n{}",
        table.render(2)
    )
}

/// Runs `ehstore status`.
///
/// # Errors
/// Bad arguments and the store's errors.
pub async fn run(args: StatusArgs) -> Result<ExitCode> {
    let store = open_store_with(&args.at.store.url, &args.at.store.read()).await?;
    let mut all = Vec::new();
    if let Some(interval) = args.watch {
        return watch(&args, store.as_ref(), interval).await;
    }
    if let Some((client, scope)) = hub_scope(&args).await? {
        let status = collect_with_lag(store.as_ref(), &client, &scope, args.expiry).await;
        let _ = client.close().await;
        all.push(status.map_err(eventhubs_store_core::Error::from)?);
    } else {
        let scopes = scopes_of(store.as_ref(), &args.at.scope, args.all).await?;
        for scope in &scopes {
            all.push(collect(store.as_ref(), scope, args.expiry).await?);
        }
    }
    if args.json {
        let json = serde_json::json!({
            "store": store.backend_name(),
            "expiry_ms": args.expiry.as_millis() as u64,
            "scopes": all,
        });
        out(&format!("{json:#}"));
    } else if all.is_empty() {
        out("the store holds no scopes");
    } else {
        let text: Vec<String> = all.iter().map(render).collect();
        out(text.join("\n").trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

/// The client and the scope of `--connection-string`.
async fn hub_scope(args: &StatusArgs) -> Result<Option<(eventhubs_client::EventHubClient, PartitionScope)>> {
    let Some(connection_string) = &args.connection_string else {
        return Ok(None);
    };
    let client = eventhubs_client::EventHubClient::from_connection_string(
        connection_string,
        args.at.scope.event_hub.as_deref(),
    )
    .await
    .map_err(|e| client_error(&e))?;
    let scope = PartitionScope::new(
        client.fully_qualified_namespace(),
        client.event_hub(),
        &args.at.scope.consumer_group,
    )?;
    Ok(Some((client, scope)))
}

/// `--watch`: samples until `--samples` or Ctrl-C.
async fn watch(args: &StatusArgs, store: &dyn CheckpointStore, interval: Duration) -> Result<ExitCode> {
    let Some((client, scope)) = hub_scope(args).await? else {
        return Err(eventhubs_store_core::Error::new(
            eventhubs_store_core::ErrorKind::InvalidInput,
            "--watch needs the hub: give --connection-string or set EVENTHUBS_CONNECTION_STRING",
        ));
    };
    if let Some(addr) = args.metrics_addr {
        super::prometheus::serve(addr)?;
    }
    let mut watch = super::watch::Watch::new(args.window as usize, args.stall_after);
    let redraw = !args.json && super::watch::redraw();
    let mut sample = 0u64;
    let result = loop {
        sample += 1;
        let taken = std::time::Instant::now();
        let mut status = match collect_with_lag(store, &client, &scope, args.expiry).await {
            Ok(status) => status,
            Err(e) => break Err(e.into()),
        };
        let judged = watch.sample(&mut status, taken);
        if args.metrics_addr.is_some() {
            super::prometheus::record(&status, &judged);
        }
        if args.json {
            let line = serde_json::json!({
                "sample": sample,
                "at": OffsetDateTime::now_utc().format(&Rfc3339).ok(),
                "scope": status,
                "rates": judged,
            });
            out(&line.to_string());
        } else {
            let text = super::watch::render(&status, &judged, sample);
            if redraw {
                out(&format!("\x1b[H\x1b[2J{}", text.trim_end()));
            } else {
                out(&format!("{}\n", text.trim_end()));
            }
        }
        if args.samples != 0 && sample >= args.samples {
            break Ok(ExitCode::SUCCESS);
        }
        tokio::select! {
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(taken + interval)) => {}
            _ = tokio::signal::ctrl_c() => break Ok(ExitCode::SUCCESS),
        }
    };
    let _ = client.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventhubs_store_core::ETag;

    #[test]
    fn states_follow_expiry_and_relinquish() {
        let scope = PartitionScope::new("ns", "hub", "cg").unwrap();
        let now = OffsetDateTime::now_utc();
        let at = |secs: i64, owner: &str| Ownership {
            etag: Some(ETag::new("e")),
            last_modified_time: Some(now - time::Duration::seconds(secs)),
            ..Ownership::new(scope.clone(), "0", owner)
        };
        let expiry = Duration::from_secs(60);
        assert_eq!(
            ownership_state(Some(&at(5, "a")), now, expiry).0,
            OwnershipState::Owned
        );
        assert_eq!(
            ownership_state(Some(&at(61, "a")), now, expiry).0,
            OwnershipState::Expired
        );
        assert_eq!(
            ownership_state(Some(&at(1, "")), now, expiry).0,
            OwnershipState::Relinquished
        );
        assert_eq!(ownership_state(None, now, expiry).0, OwnershipState::Unowned);
        // A store clock slightly ahead never gives a negative age.
        assert_eq!(
            ownership_state(Some(&at(-3, "a")), now, expiry).1,
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn table_joins_ownership_and_checkpoints() {
        let scope = PartitionScope::new("ns", "hub", "cg").unwrap();
        let now = OffsetDateTime::now_utc();
        let owners = vec![Ownership {
            etag: Some(ETag::new("e")),
            last_modified_time: Some(now - time::Duration::seconds(2)),
            ..Ownership::new(scope.clone(), "10", "alpha")
        }];
        let cps = vec![Checkpoint::new(scope.clone(), "2", Some("77".into()), Some(7))];
        let status = join(&scope, &owners, &cps, &[], now, Duration::from_secs(60));
        let text = render(&status);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ns/hub/cg: 2 partition(s)");
        assert!(lines[2].starts_with("  2 ") && lines[2].contains("unowned") && lines[2].ends_with("77"));
        assert!(lines[3].contains("alpha") && lines[3].contains("2.0s") && lines[3].contains("owned"));
    }
}
