//! `ehstore export`: the checkpoints (and with `--ownership` the ownership records) of one scope
//! or of every scope, in the JSON Lines format of [`crate::format`].

use std::io::Write;
use std::process::ExitCode;

use eventhubs_store_core::{Error, ErrorKind, Result};

use crate::cli::ExportArgs;
use crate::commands::scopes_of;
use crate::format::{checkpoint_line, header_line, ownership_line};
use crate::open::open_store_with;
use crate::table::partition_order;

/// Runs `ehstore export`.
///
/// # Errors
/// Bad arguments, the store's errors, and a file that cannot be written.
pub async fn run(args: ExportArgs) -> Result<ExitCode> {
    let store = open_store_with(&args.at.store.url, &args.at.store.read()).await?;
    let scopes = scopes_of(store.as_ref(), &args.at.scope, args.all).await?;
    let mut lines = vec![header_line()];
    let (mut checkpoints, mut ownership) = (0, 0);
    for scope in &scopes {
        let mut cps = store.list_checkpoints(scope).await?;
        cps.sort_by(|a, b| partition_order(&a.partition_id, &b.partition_id));
        checkpoints += cps.len();
        lines.extend(cps.iter().map(checkpoint_line));
        if args.ownership {
            let mut owners = store.list_ownership(scope).await?;
            owners.sort_by(|a, b| partition_order(&a.partition_id, &b.partition_id));
            ownership += owners.len();
            lines.extend(owners.iter().map(ownership_line));
        }
    }
    let mut text = lines.join("\n");
    text.push('\n');
    match &args.output {
        Some(path) => {
            write_file(path, &text)?;
            eprintln!(
                "exported {checkpoints} checkpoint(s){} of {} scope(s) to {}",
                if args.ownership {
                    format!(" and {ownership} ownership record(s)")
                } else {
                    String::new()
                },
                scopes.len(),
                path.display()
            );
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .and_then(|()| stdout.flush())
                .map_err(|e| {
                    Error::new(ErrorKind::Unavailable, "cannot write to standard output").with_source(e)
                })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to `path` through a temporary file and a rename, so a failed export never
/// leaves a truncated file where a good one was.
fn write_file(path: &std::path::Path, text: &str) -> Result<()> {
    let fail = |what: &str, e: std::io::Error| {
        Error::new(ErrorKind::InvalidInput, format!("{what} {}", path.display())).with_source(e)
    };
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| fail("cannot write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail("cannot replace", e)
    })
}
