//! The query plans of the operator's statements: each page is a range of an index, never a scan
//! of the deliveries.

use rusqlite::Connection;

use super::sql;
use crate::durable::sqlite::statements::{MIGRATE_V2, MIGRATE_V3, SCHEMA_V1};

/// The plan SQLite makes for `statement` with `parameters` null, one line per step.
fn plan(statement: &str, parameters: usize) -> String {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(&[SCHEMA_V1, MIGRATE_V2, MIGRATE_V3].concat())
        .unwrap();
    let lines: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
        .unwrap()
        .query_map(
            rusqlite::params_from_iter(std::iter::repeat_n(rusqlite::types::Null, parameters)),
            |row| row.get::<_, String>(3),
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    lines.join("\n")
}

#[test]
fn a_page_of_a_listener_is_a_range_of_one_index() {
    for (statement, index) in [
        (
            sql::WAITING,
            "USING INDEX emitter_deliveries_order (listener=? AND first_due>?",
        ),
        (
            sql::SCHEDULED,
            "USING INDEX emitter_deliveries_due (listener=? AND run_at>?",
        ),
        (
            sql::RUNNING,
            "USING INDEX emitter_deliveries_suspects (run_at>?",
        ),
        (
            sql::DEAD,
            "USING INDEX emitter_dead_letters_failed (failed_at>?",
        ),
    ] {
        let plan = plan(statement, 9);
        println!("{plan}");
        assert!(plan.contains(index), "{plan}");
        assert!(!plan.contains("SCAN"), "{plan}");
        assert!(!plan.contains("TEMP B-TREE"), "no sort: {plan}");
    }
}

#[test]
fn the_listeners_are_found_by_seeks_and_counted_from_the_index() {
    let listeners = plan(sql::LISTENERS, 0);
    println!("{listeners}");
    assert!(
        !listeners.contains("SCAN emitter_deliveries"),
        "{listeners}"
    );
    let counts = plan(sql::COUNTS, 1);
    assert!(
        counts.contains("SCAN emitter_deliveries USING COVERING INDEX emitter_deliveries_due"),
        "{counts}"
    );
}
