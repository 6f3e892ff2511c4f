//! The SQL of each store operation, one concern per file. Every function here is blocking and
//! runs inside a connection handed out by [`crate::pool::Connections`].

pub(crate) mod checkpoint;
pub(crate) mod ownership;

use eventhubs_store_core::{PartitionScope, Result};
use rusqlite::Connection;

use crate::error::{corrupt_record, sqlite_error};

/// The scope's three names as the first three SQL parameters (`?1`, `?2`, `?3`).
pub(crate) fn scope_params(scope: &PartitionScope) -> [&str; 3] {
    [scope.namespace(), scope.event_hub(), scope.consumer_group()]
}

/// Every scope holding an ownership or a checkpoint, sorted.
pub(crate) fn list_scopes(conn: &Connection) -> Result<Vec<PartitionScope>> {
    let fail = |e| sqlite_error("list_scopes", e);
    let mut stmt = conn
        .prepare_cached(
            "SELECT namespace, event_hub, consumer_group FROM ownership
             UNION
             SELECT namespace, event_hub, consumer_group FROM checkpoint
             ORDER BY 1, 2, 3",
        )
        .map_err(fail)?;
    let rows = stmt
        .query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .map_err(fail)?;
    let mut scopes = Vec::new();
    for row in rows {
        let (namespace, event_hub, consumer_group) = row.map_err(fail)?;
        let scope = PartitionScope::new(&namespace, &event_hub, &consumer_group)
            .map_err(|e| corrupt_record("scope", e))?;
        scopes.push(scope);
    }
    Ok(scopes)
}
