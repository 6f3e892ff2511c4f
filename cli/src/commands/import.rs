//! `ehstore import`: checkpoints from a JSON Lines export ([`crate::format`]). The whole file is
//! validated first; if any line is bad, every bad line is reported and nothing is written.
//! Ownership lines are validated and counted, not written (see [`crate::format`] for why).

use std::io::Read;
use std::process::ExitCode;

use eventhubs_store_core::{Error, ErrorKind, Result};

use crate::cli::ImportArgs;
use crate::commands::write_checkpoints;
use crate::format::parse_jsonl;
use crate::open::open_store_with;

/// The most bad lines listed before "and N more".
const MAX_LISTED_ERRORS: usize = 20;

/// Runs `ehstore import`.
///
/// # Errors
/// An unreadable or invalid file (nothing written) and the store's errors.
pub async fn run(args: ImportArgs) -> Result<ExitCode> {
    let text = read_input(&args.input)?;
    let parsed = match parse_jsonl(&text) {
        Ok(p) => p,
        Err(errors) => {
            for e in errors.iter().take(MAX_LISTED_ERRORS) {
                eprintln!("  {}: {e}", args.input.display());
            }
            if errors.len() > MAX_LISTED_ERRORS {
                eprintln!("  … and {} more bad lines", errors.len() - MAX_LISTED_ERRORS);
            }
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} has {} bad line(s) (first: {}); nothing was written",
                    args.input.display(),
                    errors.len(),
                    errors[0]
                ),
            ));
        }
    };
    if !parsed.ownership.is_empty() {
        eprintln!(
            "note: {} ownership record(s) not imported: etags belong to the store that issued them; processors claim afresh",
            parsed.ownership.len()
        );
    }
    let store = open_store_with(&args.store.url, &args.store.write()).await?;
    Ok(write_checkpoints(
        store.as_ref(),
        &parsed.checkpoints,
        args.write.options(),
        "importing",
    )
    .await)
}

fn read_input(path: &std::path::Path) -> Result<String> {
    let fail = |e: std::io::Error| {
        Error::new(ErrorKind::InvalidInput, format!("cannot read {}", path.display())).with_source(e)
    };
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(fail)?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(fail)
}
