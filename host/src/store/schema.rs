//! The store's schema, as numbered migrations applied in order, each in its own transaction.

use rusqlite::{Connection, params};

/// Migration `i` takes the schema from version `i` to `i + 1`. Never edit one that has shipped:
/// add the next.
const MIGRATIONS: &[&str] = &[
    // 1: runs, their components, steps and emitted records.
    "CREATE TABLE runs (
         id TEXT PRIMARY KEY,
         job TEXT NOT NULL,
         job_file TEXT NOT NULL,
         job_digest TEXT NOT NULL,
         status TEXT NOT NULL,
         error TEXT,
         recorded_at_ms INTEGER NOT NULL,
         duration_ms REAL NOT NULL,
         outputs TEXT NOT NULL,
         parent_run_id TEXT REFERENCES runs(id)
     );
     CREATE INDEX runs_by_time ON runs (recorded_at_ms DESC);
     CREATE TABLE run_components (
         run_id TEXT NOT NULL REFERENCES runs(id),
         op TEXT NOT NULL,
         digest TEXT NOT NULL,
         PRIMARY KEY (run_id, op)
     );
     CREATE TABLE steps (
         run_id TEXT NOT NULL REFERENCES runs(id),
         seq INTEGER NOT NULL,
         key TEXT NOT NULL,
         op TEXT NOT NULL,
         mapping_key TEXT,
         status TEXT NOT NULL,
         error TEXT,
         attempts INTEGER NOT NULL,
         duration_ms REAL NOT NULL,
         previous_attempts TEXT NOT NULL,
         log TEXT NOT NULL,
         PRIMARY KEY (run_id, key)
     );
     CREATE TABLE records (
         run_id TEXT NOT NULL REFERENCES runs(id),
         step_key TEXT NOT NULL,
         seq INTEGER NOT NULL,
         output TEXT NOT NULL,
         mapping_key TEXT NOT NULL,
         metadata TEXT NOT NULL,
         PRIMARY KEY (run_id, step_key, output, seq)
     );",
    // 2: values — each step's plain outputs and each record's value, as JSON text.
    "ALTER TABLE steps ADD COLUMN outputs TEXT NOT NULL DEFAULT '{}';
     ALTER TABLE records ADD COLUMN value TEXT;",
    // 3: re-executions — the parent's steps a run reused.
    "ALTER TABLE runs ADD COLUMN reused TEXT NOT NULL DEFAULT '[]';",
    // 4: steps recorded as they end (a run starts as `running`), so a killed run can be resumed:
    //    the steps a re-execution reused (copied, flagged), each clone's record digest, each
    //    step's place in report order (steps end in any order), the `--set` overrides the run
    //    was started with, and each op's effective config (defaults and overrides applied).
    "ALTER TABLE steps ADD COLUMN reused INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE steps ADD COLUMN record_digest TEXT;
     ALTER TABLE steps ADD COLUMN sort_key BLOB;
     ALTER TABLE runs ADD COLUMN overrides TEXT NOT NULL DEFAULT '[]';
     ALTER TABLE run_components ADD COLUMN config TEXT;",
    // 5: re-execution by lineage — the digest of each step's inputs (a later run takes a result
    //    only for the same inputs), and a re-execution's selection (to resume it as planned).
    "ALTER TABLE steps ADD COLUMN inputs_digest TEXT;
     ALTER TABLE runs ADD COLUMN selection TEXT;",
    // 6: many machines — where each step's last attempt ran (a worker's name, or `local`).
    "ALTER TABLE steps ADD COLUMN worker TEXT;",
    // 7: the metadata of each step's plain outputs (`{output: {key: value}}`), and the parsed
    //    job a run started from (`resume` compares it, not the file's bytes).
    "ALTER TABLE steps ADD COLUMN output_metadata TEXT NOT NULL DEFAULT '{}';
     ALTER TABLE runs ADD COLUMN job_model TEXT;",
    // 8: the run viewer — when each step started and ended; a log of step events (each start
    //    of an attempt, each end) numbered across the store, which a viewer follows and resumes
    //    from by number (`steps` stays the table of ended steps, which `resume` reads); an index
    //    to page a run's clones by op in emission order (a status or key-prefix filter walks it;
    //    the primary key already orders steps by key: one more index per step written cost more
    //    than it saved). Numbers never repeat (AUTOINCREMENT), even after `gc` deletes the run
    //    that held the last one: a page resumes after its number. Runs recorded before keep their steps:
    //    one `ended` event each, in report order, with no time.
    "ALTER TABLE steps ADD COLUMN started_at_ms INTEGER;
     ALTER TABLE steps ADD COLUMN ended_at_ms INTEGER;
     CREATE TABLE step_events (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         run_id TEXT NOT NULL REFERENCES runs(id),
         step_key TEXT NOT NULL,
         op TEXT NOT NULL,
         attempt INTEGER NOT NULL,
         from_status TEXT,
         to_status TEXT,
         at_ms INTEGER
     );
     CREATE INDEX step_events_by_run ON step_events (run_id, seq);
     CREATE INDEX step_events_by_step ON step_events (run_id, step_key, seq);
     CREATE INDEX steps_by_op_order ON steps (run_id, op, sort_key, seq);
     CREATE INDEX runs_by_parent ON runs (parent_run_id);
     INSERT INTO step_events (run_id, step_key, op, attempt, from_status, to_status, at_ms)
         SELECT run_id, key, op, attempts, NULL, status, NULL FROM steps ORDER BY run_id, sort_key, seq;",
];

/// Bring the schema up to date. Two processes may open a new store at once (a run creating it,
/// `sandmap runs` polling it): each migration takes the write lock first (`BEGIN IMMEDIATE`)
/// and reads the version under it, so the second process waits, then finds it applied.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")?;
        let current: i64 =
            tx.query_row("SELECT COALESCE(MAX(version), 0) FROM schema_version", [], |row| row.get(0))?;
        let Some(migration) = usize::try_from(current).ok().and_then(|i| MIGRATIONS.get(i)) else {
            return tx.commit();
        };
        tx.execute_batch(migration)?;
        tx.execute("INSERT INTO schema_version (version) VALUES (?1)", params![current + 1])?;
        tx.commit()?;
    }
}

/// The schema version a store is at once migrated.
pub const VERSION: usize = MIGRATIONS.len();

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op_and_records_the_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let versions: Vec<i64> = conn
            .prepare("SELECT version FROM schema_version ORDER BY version")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(versions, (1..=VERSION as i64).collect::<Vec<_>>());
    }

    #[test]
    fn a_version_1_store_keeps_its_rows_through_later_migrations() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);",
        )
        .unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "INSERT INTO runs VALUES ('r1', 'j', 'j.toml', 'd', 'success', NULL, 1, 2.0, '{}', NULL);
             INSERT INTO steps VALUES ('r1', 0, 'a', 'a', NULL, 'success', NULL, 1, 1.0, '[]', '{}');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let outputs: String = conn.query_row("SELECT outputs FROM steps WHERE key = 'a'", [], |r| r.get(0)).unwrap();
        assert_eq!(outputs, "{}");
        let version: i64 = conn.query_row("SELECT MAX(version) FROM schema_version", [], |r| r.get(0)).unwrap();
        assert_eq!(version, VERSION as i64);
    }

    #[test]
    fn a_version_7_store_gets_one_ended_event_per_step_in_report_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE schema_version (version INTEGER NOT NULL);").unwrap();
        for (i, migration) in MIGRATIONS[..7].iter().enumerate() {
            conn.execute_batch(migration).unwrap();
            conn.execute("INSERT INTO schema_version VALUES (?1)", params![i as i64 + 1]).unwrap();
        }
        conn.execute_batch(
            "INSERT INTO runs (id, job, job_file, job_digest, status, recorded_at_ms, duration_ms, outputs)
                 VALUES ('r1', 'j', 'j.toml', 'd', 'failure', 1, 2.0, '{}');
             INSERT INTO steps (run_id, seq, key, op, status, attempts, duration_ms, previous_attempts, log, sort_key)
                 VALUES ('r1', 0, 'b[k1]', 'b', 'failure', 2, 1.0, '[]', '{}', X'0000000100000001'),
                        ('r1', 1, 'a', 'a', 'success', 1, 1.0, '[]', '{}', X'00000000'),
                        ('r1', 2, 'b[k0]', 'b', 'success', 1, 1.0, '[]', '{}', X'0000000100000000');",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        type Event = (String, i64, Option<String>, String, Option<i64>);
        let events: Vec<Event> = conn
            .prepare("SELECT step_key, attempt, from_status, to_status, at_ms FROM step_events ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            events,
            [
                ("a".into(), 1, None, "success".into(), None),
                ("b[k0]".into(), 1, None, "success".into(), None),
                ("b[k1]".into(), 2, None, "failure".into(), None),
            ]
        );
        let times: (Option<i64>, Option<i64>) = conn
            .query_row("SELECT started_at_ms, ended_at_ms FROM steps WHERE key = 'a'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(times, (None, None));
    }

    #[test]
    fn processes_that_open_a_new_store_at_once_all_find_it_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.db");
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut conn = Connection::open(&path).unwrap();
                    conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
                    migrate(&mut conn)
                })
            })
            .collect();
        for opener in openers {
            opener.join().unwrap().unwrap();
        }
        let conn = Connection::open(&path).unwrap();
        let versions: i64 = conn.query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0)).unwrap();
        assert_eq!(versions, VERSION as i64);
    }
}
