//! Writing a set of checkpoints into a store safely: the engine of `migrate`, `import` and
//! `import-legacy`.
//!
//! For each checkpoint the target's current value decides:
//! - absent or different → written (**copied**);
//! - identical → left alone (**unchanged**), so re-running changes nothing;
//! - the target's sequence number is higher → left alone (**skipped**) unless `overwrite_newer`:
//!   a processor on the target has moved further, and going back would replay events.
//!
//! After writing, every copied and unchanged checkpoint is read back from the target and
//! compared field by field; a difference or a failed write counts as **failed**.

use std::collections::BTreeMap;
use std::io::IsTerminal;

use eventhubs_store_core::{Checkpoint, CheckpointStore, PartitionScope, SetCheckpointOptions};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// How [`sync_checkpoints`] writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncOptions {
    /// Overwrite a target checkpoint with a higher sequence number.
    pub overwrite_newer: bool,
    /// Decide and report, write nothing.
    pub dry_run: bool,
}

/// What happened, by count, with one note per skipped or failed checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Written (or, in a dry run, to be written) and verified.
    pub copied: usize,
    /// Already identical in the target.
    pub unchanged: usize,
    /// Left alone because the target is newer.
    pub skipped: usize,
    /// Could not be written or did not read back identical.
    pub failed: usize,
    /// One line per skipped or failed checkpoint.
    pub notes: Vec<String>,
}

impl Summary {
    /// Adds another summary's counts and notes.
    pub fn add(&mut self, other: Summary) {
        self.copied += other.copied;
        self.unchanged += other.unchanged;
        self.skipped += other.skipped;
        self.failed += other.failed;
        self.notes.extend(other.notes);
    }

    /// The one-line summary printed at the end.
    pub fn line(&self, dry_run: bool) -> String {
        let copied = if dry_run { "to copy" } else { "copied" };
        format!(
            "{} {copied}, {} unchanged, {} skipped, {} failed",
            self.copied, self.unchanged, self.skipped, self.failed
        )
    }
}

/// What to do with one checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Write it.
    Write,
    /// The target holds exactly this.
    Unchanged,
    /// The target's sequence number is higher.
    SkipNewer,
}

/// Decides for one checkpoint given the target's current one (see the module docs).
pub fn decide(source: &Checkpoint, target: Option<&Checkpoint>, overwrite_newer: bool) -> Decision {
    match target {
        None => Decision::Write,
        Some(t) if t == source => Decision::Unchanged,
        Some(t) => match (t.sequence_number, source.sequence_number) {
            (Some(t_seq), Some(s_seq)) if t_seq > s_seq && !overwrite_newer => Decision::SkipNewer,
            _ => Decision::Write,
        },
    }
}

/// A progress bar on stderr when it is a terminal, hidden otherwise (pipes, CI logs, tests).
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Writes `records` into `target` as the module docs describe; `progress` advances once per
/// record. Errors of the target are counted as failures with a note, never abort the run.
pub async fn sync_checkpoints(
    target: &dyn CheckpointStore,
    records: &[Checkpoint],
    options: SyncOptions,
    progress: &ProgressBar,
) -> Summary {
    let mut by_scope: BTreeMap<PartitionScope, Vec<&Checkpoint>> = BTreeMap::new();
    for cp in records {
        by_scope.entry(cp.scope.clone()).or_default().push(cp);
    }
    let mut summary = Summary::default();
    for (scope, cps) in by_scope {
        summary.add(sync_scope(target, &scope, &cps, options, progress).await);
    }
    summary
}

async fn sync_scope(
    target: &dyn CheckpointStore,
    scope: &PartitionScope,
    records: &[&Checkpoint],
    options: SyncOptions,
    progress: &ProgressBar,
) -> Summary {
    let mut summary = Summary::default();
    let existing = match target.list_checkpoints(scope).await {
        Ok(v) => v,
        Err(e) => {
            summary.failed = records.len();
            summary
                .notes
                .push(format!("{scope}: cannot read the target: {e}"));
            progress.inc(records.len() as u64);
            return summary;
        }
    };
    let mut to_verify = Vec::new();
    for &cp in records {
        let current = existing.iter().find(|t| t.partition_id == cp.partition_id);
        match decide(cp, current, options.overwrite_newer) {
            Decision::Unchanged => {
                summary.unchanged += 1;
                to_verify.push(cp);
            }
            Decision::SkipNewer => {
                summary.skipped += 1;
                summary.notes.push(format!(
                    "skipped {scope} partition {}: the target's sequence number {} is newer than {} (--overwrite-newer to replace it)",
                    cp.partition_id,
                    current.and_then(|c| c.sequence_number).unwrap_or_default(),
                    cp.sequence_number.unwrap_or_default(),
                ));
            }
            Decision::Write if options.dry_run => summary.copied += 1,
            Decision::Write => match target.set_checkpoint(cp, &SetCheckpointOptions::new()).await {
                Ok(()) => {
                    summary.copied += 1;
                    to_verify.push(cp);
                }
                Err(e) => {
                    summary.failed += 1;
                    summary
                        .notes
                        .push(format!("failed {scope} partition {}: {e}", cp.partition_id));
                }
            },
        }
        progress.inc(1);
    }
    if options.dry_run || to_verify.is_empty() {
        return summary;
    }
    verify(target, scope, &to_verify, &mut summary).await;
    summary
}

/// Reads the scope back and checks every written or unchanged checkpoint is there, identical.
async fn verify(
    target: &dyn CheckpointStore,
    scope: &PartitionScope,
    expected: &[&Checkpoint],
    summary: &mut Summary,
) {
    let stored = match target.list_checkpoints(scope).await {
        Ok(v) => v,
        Err(e) => {
            summary
                .notes
                .push(format!("{scope}: cannot read back to verify: {e}"));
            summary.failed += expected.len();
            summary.copied = summary.copied.saturating_sub(expected.len());
            return;
        }
    };
    for &cp in expected {
        let found = stored.iter().find(|s| s.partition_id == cp.partition_id);
        if found != Some(cp) {
            summary.failed += 1;
            summary.copied = summary.copied.saturating_sub(1);
            summary.notes.push(format!(
                "failed {scope} partition {}: read back {found:?}, expected offset {:?} sequence number {:?}",
                cp.partition_id, cp.offset, cp.sequence_number
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventhubs_store_core::InMemoryStore;

    fn cp(p: &str, seq: i64) -> Checkpoint {
        let scope = PartitionScope::new("ns", "hub", "cg").unwrap();
        Checkpoint::new(scope, p, Some(format!("o{seq}")), Some(seq))
    }

    #[test]
    fn decisions() {
        assert_eq!(decide(&cp("0", 5), None, false), Decision::Write);
        assert_eq!(decide(&cp("0", 5), Some(&cp("0", 5)), false), Decision::Unchanged);
        assert_eq!(decide(&cp("0", 5), Some(&cp("0", 3)), false), Decision::Write);
        assert_eq!(decide(&cp("0", 5), Some(&cp("0", 9)), false), Decision::SkipNewer);
        assert_eq!(decide(&cp("0", 5), Some(&cp("0", 9)), true), Decision::Write);
    }

    #[tokio::test]
    async fn second_run_changes_nothing_and_newer_targets_are_kept() {
        let target = InMemoryStore::new();
        let bar = ProgressBar::hidden();
        let records = vec![cp("0", 1), cp("1", 2)];
        let first = sync_checkpoints(&target, &records, SyncOptions::default(), &bar).await;
        assert_eq!((first.copied, first.unchanged, first.failed), (2, 0, 0));
        let again = sync_checkpoints(&target, &records, SyncOptions::default(), &bar).await;
        assert_eq!((again.copied, again.unchanged), (0, 2));
        target
            .set_checkpoint(&cp("1", 50), &SetCheckpointOptions::new())
            .await
            .unwrap();
        let newer = sync_checkpoints(&target, &records, SyncOptions::default(), &bar).await;
        assert_eq!((newer.unchanged, newer.skipped), (1, 1));
        assert!(newer.notes[0].contains("--overwrite-newer"), "{:?}", newer.notes);
        let dry = SyncOptions {
            overwrite_newer: true,
            dry_run: true,
        };
        let planned = sync_checkpoints(&target, &records, dry, &bar).await;
        assert_eq!(planned.copied, 1);
        let scope = records[0].scope.clone();
        let stored = target.list_checkpoints(&scope).await.unwrap();
        assert!(stored.contains(&cp("1", 50)), "a dry run wrote: {stored:?}");
    }
}
