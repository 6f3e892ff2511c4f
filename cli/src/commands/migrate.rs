//! `ehstore migrate --from URL --to URL`: copies the checkpoints of one scope, or of every scope
//! of the source, into another store (see [`crate::sync`] for what is copied, skipped and
//! verified). Re-running it changes nothing.
//!
//! Ownership is not copied. An ownership record is only meaningful with the etag and the clock
//! time of the store that issued them (rules C4, C5): a copy would carry neither, and would look
//! like a live claim nobody made. Ownership expires within a minute anyway; processors started
//! on the new store claim their partitions afresh and resume from the migrated checkpoints.

use std::process::ExitCode;

use eventhubs_store_core::Result;

use crate::cli::MigrateArgs;
use crate::commands::{scopes_of, write_checkpoints};
use crate::open::{OpenOptions, open_store_with};
use crate::redact::redact_url;

/// Runs `ehstore migrate`.
///
/// # Errors
/// Bad arguments and errors opening or listing either store; per-record failures are counted
/// in the summary (exit code 1) instead.
pub async fn run(args: MigrateArgs) -> Result<ExitCode> {
    let source = open_store_with(
        &args.from,
        &OpenOptions::read_only().with_container(args.from_container.clone()),
    )
    .await?;
    // Source scopes first: a typo in --from must not create the target.
    let all = args.all || args.scope.optional()?.is_none();
    let scopes = scopes_of(source.as_ref(), &args.scope, all).await?;
    let mut records = Vec::new();
    for scope in &scopes {
        records.extend(source.list_checkpoints(scope).await?);
    }
    let target = open_store_with(
        &args.to,
        &OpenOptions::prepared().with_container(args.to_container.clone()),
    )
    .await?;
    eprintln!(
        "{} {} checkpoint(s) of {} scope(s) from {} ({}) to {} ({})",
        if args.write.dry_run {
            "dry run: checking"
        } else {
            "migrating"
        },
        records.len(),
        scopes.len(),
        redact_url(&args.from),
        source.backend_name(),
        redact_url(&args.to),
        target.backend_name()
    );
    Ok(write_checkpoints(target.as_ref(), &records, args.write.options(), "migrating").await)
}
