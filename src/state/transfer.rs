//! Moving ownership records between stores (`livy-gateway state export` and
//! `state import`): one JSON object per line, `{"kind": "batch", "id": 3,
//! "owner": "alice", "name": "nightly"}`, in kind and id order. Export from one
//! backend and import into the other to move a gateway from local state to Redis
//! (or back) without losing who owns what.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use super::{Change, Kind, OwnershipStore, Record, State};
use crate::config::{Config, StateBackend};
use crate::error::StartupError;
use crate::metrics::Metrics;

/// Records applied per change set on import.
const CHUNK: usize = 500;

/// One record as a line of the export.
#[derive(Serialize, Deserialize)]
struct Line {
    kind: String,
    id: u64,
    owner: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    name: Option<String>,
}

/// `state export`: every record of `backend`'s store, to `out`; returns how many.
pub async fn export_from(
    config: &Config,
    backend: StateBackend,
    out: &mut dyn Write,
) -> Result<usize, StartupError> {
    let state = State::open_backend(config, backend, &Arc::new(Metrics::new()))?;
    export(&*state.ownership, out).await
}

/// `state import`: records from `input` into `backend`'s store; returns how many.
pub async fn import_into(
    config: &Config,
    backend: StateBackend,
    input: &mut dyn BufRead,
) -> Result<usize, StartupError> {
    let state = State::open_backend(config, backend, &Arc::new(Metrics::new()))?;
    import(&*state.ownership, input).await
}

/// Writes every record of `store` to `out`; returns how many.
pub async fn export(
    store: &dyn OwnershipStore,
    out: &mut dyn Write,
) -> Result<usize, StartupError> {
    let records = store
        .export()
        .await
        .map_err(|e| StartupError::Other(format!("cannot read the records: {e}")))?;
    let fail = |e: std::io::Error| StartupError::Other(format!("cannot write the records: {e}"));
    for (kind, id, record) in &records {
        let line = Line {
            kind: kind.as_str().to_owned(),
            id: *id,
            owner: record.owner.clone(),
            name: record.name.clone(),
        };
        let text = serde_json::to_string(&line).expect("a record is JSON");
        writeln!(out, "{text}").map_err(fail)?;
    }
    out.flush().map_err(fail)?;
    Ok(records.len())
}

/// Reads records from `input` into `store` (a record for the same id is
/// replaced); returns how many. Every line is checked before any is written.
pub async fn import(
    store: &dyn OwnershipStore,
    input: &mut dyn BufRead,
) -> Result<usize, StartupError> {
    let mut records = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line =
            line.map_err(|e| StartupError::Other(format!("cannot read the records: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |why: String| StartupError::Other(format!("line {}: {why}", n + 1));
        let parsed: Line = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let kind = Kind::parse(&parsed.kind)
            .ok_or_else(|| bad(format!("kind {:?}: use batch or session", parsed.kind)))?;
        if parsed.owner.is_empty() {
            return Err(bad("empty owner".into()));
        }
        let record = Record {
            owner: parsed.owner,
            name: parsed.name,
        };
        records.push((kind, parsed.id, record));
    }
    for chunk in records.chunks(CHUNK) {
        let changes = chunk
            .iter()
            .map(|(kind, id, record)| Change::Put(*kind, vec![(*id, record.clone())]))
            .collect();
        store
            .apply(changes)
            .await
            .map_err(|e| StartupError::Other(format!("cannot write the records: {e}")))?;
    }
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::local::ownership::RedbOwnershipStore;

    #[tokio::test]
    async fn what_is_exported_imports_to_the_same_records() {
        let retention = std::time::Duration::from_secs(86_400);
        let from_dir = tempfile::tempdir().unwrap();
        let from = RedbOwnershipStore::open(from_dir.path(), retention).unwrap();
        let records = vec![
            Change::Put(
                Kind::Batch,
                vec![(
                    3,
                    Record {
                        owner: "alice".into(),
                        name: Some("nightly".into()),
                    },
                )],
            ),
            Change::Put(
                Kind::Session,
                vec![(
                    1,
                    Record {
                        owner: "bob".into(),
                        name: None,
                    },
                )],
            ),
        ];
        from.apply(records).await.unwrap();
        let mut text = Vec::new();
        assert_eq!(export(&from, &mut text).await.unwrap(), 2);
        let text = String::from_utf8(text).unwrap();
        assert_eq!(
            text,
            "{\"kind\":\"batch\",\"id\":3,\"owner\":\"alice\",\"name\":\"nightly\"}\n\
             {\"kind\":\"session\",\"id\":1,\"owner\":\"bob\"}\n"
        );
        let to_dir = tempfile::tempdir().unwrap();
        let to = RedbOwnershipStore::open(to_dir.path(), retention).unwrap();
        assert_eq!(import(&to, &mut text.as_bytes()).await.unwrap(), 2);
        assert_eq!(to.export().await.unwrap(), from.export().await.unwrap());
    }

    #[tokio::test]
    async fn a_bad_line_stops_the_import_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            RedbOwnershipStore::open(dir.path(), std::time::Duration::from_secs(60)).unwrap();
        let text = "{\"kind\":\"batch\",\"id\":1,\"owner\":\"alice\"}\n{\"kind\":\"job\",\"id\":2,\"owner\":\"bob\"}\n";
        let error = import(&store, &mut text.as_bytes())
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("line 2"), "{error}");
        assert!(store.export().await.unwrap().is_empty());
    }
}
