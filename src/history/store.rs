//! The history file: an SQLite database of entries (one per run or Criterion run added) and
//! their points (one value per benchmark, metric and statistic).

use std::path::Path;

use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OpenFlags};

/// The schema this build writes and reads (SQLite's user_version).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS entries (
    id INTEGER PRIMARY KEY,
    added_at TEXT NOT NULL,
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    run_id TEXT NOT NULL,
    branch TEXT NOT NULL,
    git_commit TEXT NOT NULL,
    machine TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS points (
    entry INTEGER NOT NULL REFERENCES entries(id),
    benchmark TEXT NOT NULL,
    metric TEXT NOT NULL,
    statistic TEXT NOT NULL,
    unit TEXT NOT NULL,
    value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS points_by_series ON points (benchmark, metric, statistic);
";

#[derive(Debug, Clone)]
pub struct Entry {
    pub id: i64,
    pub added_at: String,
    pub source: String,
    pub kind: String,
    pub run_id: String,
    pub branch: String,
    pub git_commit: String,
    /// The hardware (or, for instruction counts, the count profile) it was measured on.
    pub machine: String,
}

#[derive(Debug, Clone)]
pub struct Point {
    pub benchmark: String,
    pub metric: String,
    pub statistic: String,
    pub unit: String,
    pub value: f64,
}

pub struct Store {
    conn: Connection,
}

impl Store {
    /// Open (creating when `create`) the history at `path`; a file that is not one is an
    /// error naming it.
    pub fn open(path: &Path, create: bool) -> Result<Store> {
        if !create && !path.is_file() {
            bail!(
                "{}: no history yet (add results with `inferbench history add RUN`)",
                path.display()
            );
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("{}: cannot create its folder", path.display()))?;
        }
        let flags = if create {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        };
        let conn = Connection::open_with_flags(path, flags)
            .with_context(|| format!("{}: cannot open", path.display()))?;
        let not_history = |e: rusqlite::Error| {
            anyhow::anyhow!(
                "{}: not an inferbench history database ({e})",
                path.display()
            )
        };
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(not_history)?;
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )
            .map_err(not_history)?;
        match (version, tables) {
            (0, 0) if create => {
                conn.execute_batch(SCHEMA).map_err(not_history)?;
                conn.pragma_update(None, "user_version", SCHEMA_VERSION)
                    .map_err(not_history)?;
            }
            (0, 0) => bail!("{}: an empty database, not a history", path.display()),
            (SCHEMA_VERSION, _) => {}
            (0, _) => bail!(
                "{}: an SQLite database of something else (no inferbench schema version)",
                path.display()
            ),
            (other, _) => bail!(
                "{}: history schema version {other}; this inferbench reads version {SCHEMA_VERSION}",
                path.display()
            ),
        }
        Ok(Store { conn })
    }

    /// Add one entry with its points, in one transaction: all or nothing.
    pub fn add(&mut self, entry: &Entry, points: &[Point]) -> Result<i64> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO entries (added_at, source, kind, run_id, branch, git_commit, machine)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                entry.added_at,
                entry.source,
                entry.kind,
                entry.run_id,
                entry.branch,
                entry.git_commit,
                entry.machine
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut insert = tx.prepare(
                "INSERT INTO points (entry, benchmark, metric, statistic, unit, value)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for p in points {
                insert.execute(params![
                    id,
                    p.benchmark,
                    p.metric,
                    p.statistic,
                    p.unit,
                    p.value
                ])?;
            }
        }
        tx.commit()?;
        Ok(id)
    }

    pub fn entries(&self) -> Result<Vec<Entry>> {
        let mut q = self.conn.prepare(
            "SELECT id, added_at, source, kind, run_id, branch, git_commit, machine
             FROM entries ORDER BY id",
        )?;
        let rows = q.query_map([], |r| {
            Ok(Entry {
                id: r.get(0)?,
                added_at: r.get(1)?,
                source: r.get(2)?,
                kind: r.get(3)?,
                run_id: r.get(4)?,
                branch: r.get(5)?,
                git_commit: r.get(6)?,
                machine: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Every point, with its entry's id, in the order added.
    pub fn points(&self) -> Result<Vec<(i64, Point)>> {
        let mut q = self.conn.prepare(
            "SELECT entry, benchmark, metric, statistic, unit, value FROM points
             ORDER BY entry, rowid",
        )?;
        let rows = q.query_map([], |r| {
            Ok((
                r.get(0)?,
                Point {
                    benchmark: r.get(1)?,
                    metric: r.get(2)?,
                    statistic: r.get(3)?,
                    unit: r.get(4)?,
                    value: r.get(5)?,
                },
            ))
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}
