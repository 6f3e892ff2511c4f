//! `ehstore import-legacy`: checkpoints from Event Processor Host lease files or Go
//! `persist.FilePersister` files (formats in [`crate::legacy`]). Every file is checked first;
//! if any is malformed, nothing is written.

use std::process::ExitCode;

use eventhubs_store_core::{Checkpoint, Error, ErrorKind, Result};

use crate::cli::ImportLegacyArgs;
use crate::commands::write_checkpoints;
use crate::legacy::read_legacy_dir;
use crate::open::open_store_with;

/// Runs `ehstore import-legacy`.
///
/// # Errors
/// Bad arguments, malformed files (nothing written) and the store's errors.
pub async fn run(args: ImportLegacyArgs) -> Result<ExitCode> {
    let scope = args.at.scope.required()?;
    let found = match read_legacy_dir(&args.from, &scope, args.format) {
        Ok(found) => found,
        Err(errors) => {
            for e in &errors {
                eprintln!("  {e}");
            }
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{} malformed file(s) under {} (first: {}); nothing was written",
                    errors.len(),
                    args.from.display(),
                    errors[0]
                ),
            ));
        }
    };
    for (path, why) in &found.ignored {
        eprintln!("  ignored {}: {why}", path.display());
    }
    if found.checkpoints.is_empty() {
        return Err(Error::new(
            ErrorKind::NotFound,
            format!(
                "no checkpoints of {scope} under {} ({} file(s) ignored)",
                args.from.display(),
                found.ignored.len()
            ),
        ));
    }
    let records: Vec<Checkpoint> = found.checkpoints.into_iter().map(|(_, cp)| cp).collect();
    let store = open_store_with(&args.at.store.url, &args.at.store.write()).await?;
    Ok(write_checkpoints(store.as_ref(), &records, args.write.options(), "importing").await)
}
