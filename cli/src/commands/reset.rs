//! `ehstore reset`: set one partition's checkpoint, or delete it (`--delete`), for example to
//! skip a poison event or to re-process from an earlier position.
//!
//! A processor that owns the partition keeps its own position in memory and would overwrite the
//! reset with its next checkpoint, so the command refuses while the partition is owned (a
//! non-empty owner renewed within `--expiry`) unless `--force`. Stop the processors first, or
//! wait until the ownership expires.

use std::process::ExitCode;

use eventhubs_store_core::{Checkpoint, Error, ErrorKind, Result, SetCheckpointOptions, normalize_name};
use time::OffsetDateTime;

use crate::cli::ResetArgs;
use crate::commands::out;
use crate::commands::status::ownership_state;
use crate::duration::format_duration;
use crate::open::open_store_with;

/// Runs `ehstore reset`.
///
/// # Errors
/// Bad arguments, a currently owned partition without `--force`, and the store's errors.
pub async fn run(args: ResetArgs) -> Result<ExitCode> {
    let scope = args.at.scope.required()?;
    let partition = normalize_name("partition", &args.partition)?;
    let new = if args.delete {
        None
    } else {
        let cp = Checkpoint::new(
            scope.clone(),
            &partition,
            args.offset.clone(),
            args.sequence_number,
        );
        Some(eventhubs_store_core::normalize_checkpoint(&cp)?)
    };
    // Read options: resetting a store that does not exist yet is a typo, not a request to create it.
    let store = open_store_with(&args.at.store.url, &args.at.store.read()).await?;
    let owners = store.list_ownership(&scope).await?;
    let ownership = owners.iter().find(|o| o.partition_id == partition);
    let (state, age) = ownership_state(ownership, OffsetDateTime::now_utc(), args.expiry);
    if state.is_held() {
        let owner = ownership.map(|o| o.owner_id.as_str()).unwrap_or_default();
        let age = age.map(format_duration).unwrap_or_default();
        if !args.force {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "partition {partition} of {scope} is owned by {owner:?} (renewed {age} ago, expiry {}); \
                     its processor would overwrite the reset: stop it first, or use --force",
                    format_duration(args.expiry)
                ),
            ));
        }
        eprintln!("warning: partition {partition} is owned by {owner:?} (renewed {age} ago); --force given");
    }
    let current = store
        .list_checkpoints(&scope)
        .await?
        .into_iter()
        .find(|c| c.partition_id == partition);
    let before = describe(current.as_ref());
    let prefix = if args.dry_run {
        "dry run: would change"
    } else {
        "changed"
    };
    match new {
        None => {
            if !args.dry_run {
                store.delete_checkpoint(&scope, &partition).await?;
            }
            out(&format!(
                "{prefix} partition {partition} of {scope}: {before} -> no checkpoint (the next owner starts at its default position)"
            ));
        }
        Some(cp) => {
            if !args.dry_run {
                store.set_checkpoint(&cp, &SetCheckpointOptions::new()).await?;
            }
            out(&format!(
                "{prefix} partition {partition} of {scope}: {before} -> {}",
                describe(Some(&cp))
            ));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(cp: Option<&Checkpoint>) -> String {
    match cp {
        None => "no checkpoint".into(),
        Some(c) => format!(
            "sequence number {}, offset {}",
            c.sequence_number.map_or("-".into(), |s| s.to_string()),
            c.offset.as_deref().unwrap_or("-")
        ),
    }
}
