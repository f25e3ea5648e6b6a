//! Store figures on a real sled store in a temporary directory: the rate of
//! audit appends (each one a transaction flushed to disk, as the engine
//! makes them), `audit verify` over a million events, and history queries
//! over a million operations, with the schema-2 indexes and without them
//! (the same query forced through a full scan, as schema 1 ran it).
//!
//!     cargo bench --bench store          # EVENTS=1000000 OPS=1000000
//!
//! With `STORE_URL` (a PostgreSQL URL; `benches/shared.sh` makes a
//! throwaway cluster and runs both), the same figures on the shared store,
//! and audit appends from two servers at once (two stores on one database,
//! each appending in its own thread).
//!
//! Prints figures; asserts nothing about them.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

use gatehouse::domain::*;
use gatehouse::store::{Change, NewAuditEvent, OpField, Store};
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn operation(id: u64) -> Operation {
    let created = Timestamp(1_700_000_000_000 + id as i64 * 1000);
    // One task in a hundred is the rare one a filter looks for; every
    // ten-thousandth operation is still running.
    let task = if id % 100 == 0 {
        "rotate-keys"
    } else {
        ["nginx-status", "disk-check", "uptime"][id as usize % 3]
    };
    let state = if id % 10_000 == 0 {
        OpState::Running
    } else {
        OpState::Succeeded
    };
    Operation {
        id: Id(id),
        request: Id(id),
        task: task.into(),
        template: "t".into(),
        template_id: Id(1),
        template_revision: 1,
        executor: Executor::SshScript,
        device: format!("web-{}", id % 500),
        credential: "ops".into(),
        variables: Default::default(),
        trigger: Trigger::User,
        requested_by: ["alice", "bob", "carol"][id as usize % 3].into(),
        superuser_bypass: false,
        state,
        attempts: 1,
        max_attempts: 1,
        rerun: Default::default(),
        timeout_secs: 300,
        exit_status: Some(0),
        created_at: created,
        not_before: created,
        started_at: Some(created),
        finished_at: Some(created),
        error: None,
        jit_until: None,
        output_bytes: 0,
        output_truncated: false,
    }
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed())
}

fn main() {
    // `cargo test --all-targets` builds and starts this too, without
    // `--bench`: it only checks that it builds then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("a benchmark: run it with `cargo bench --bench NAME`");
        return;
    }
    let events = env("EVENTS", 1_000_000);
    let ops = env("OPS", 1_000_000);
    let single = env("SINGLE", 2_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = std::env::var("STORE_URL").ok().filter(|u| !u.is_empty());
    let open = || match &url {
        Some(url) => Store::open_shared(dir.path(), url).expect("shared store"),
        None => Store::open(dir.path()).expect("store"),
    };
    println!(
        "store: {}",
        if url.is_some() {
            "PostgreSQL (shared)"
        } else {
            "sled (embedded)"
        }
    );
    runtime.block_on(async {
        let store = open();
        let event = |n: usize| {
            NewAuditEvent::new(
                "alice",
                "request.approve",
                format!("request {n}"),
                "level 1: looks right",
            )
        };

        // Appends one by one, each its own flushed transaction.
        let t = Instant::now();
        for n in 0..single {
            store
                .commit(Vec::new(), vec![event(n)])
                .await
                .expect("commit");
        }
        let each = t.elapsed();
        println!(
            "audit: {single} appends, each flushed: {:.0} events/s ({:.2?} each)",
            single as f64 / each.as_secs_f64(),
            each / single as u32
        );
        // Two servers appending to one chain at once (a shared store only).
        if url.is_some() {
            let stores = [std::sync::Arc::new(store), std::sync::Arc::new(open())];
            let t = Instant::now();
            let workers: Vec<_> = stores
                .iter()
                .map(|s| {
                    let s = s.clone();
                    tokio::spawn(async move {
                        for n in 0..single / 2 {
                            s.commit(
                                Vec::new(),
                                vec![NewAuditEvent::new(
                                    "bob",
                                    "request.approve",
                                    format!("request {n}"),
                                    "x",
                                )],
                            )
                            .await
                            .expect("commit");
                        }
                    })
                })
                .collect();
            for w in workers {
                w.await.expect("worker");
            }
            let both = t.elapsed();
            println!(
                "audit: {} appends from two servers at once, each flushed: {:.0} events/s",
                single / 2 * 2,
                (single / 2 * 2) as f64 / both.as_secs_f64()
            );
            let [first, _] = stores;
            let Ok(store) = std::sync::Arc::try_unwrap(first) else {
                panic!("a worker still holds the store")
            };
            return rest(store, events, ops, single + single / 2 * 2).await;
        }
        rest(store, events, ops, single).await;
    });
}

async fn rest(store: Store, events: usize, ops: usize, single: usize) {
    let event = |n: usize| {
        NewAuditEvent::new(
            "alice",
            "request.approve",
            format!("request {n}"),
            "level 1: looks right",
        )
    };
    {
        // Then in batches of 1,000 (an import, a fan-out), up to EVENTS.
        let t = Instant::now();
        let mut n = single;
        while n < events {
            let batch: Vec<NewAuditEvent> = (n..(n + 1000).min(events)).map(event).collect();
            n += batch.len();
            store.commit(Vec::new(), batch).await.expect("commit");
        }
        let batched = t.elapsed();
        println!(
            "audit: {} more in batches of 1,000: {:.0} events/s",
            events - single,
            (events - single) as f64 / batched.as_secs_f64()
        );
        let (verified, took) = timed(|| store.verify_audit().expect("verify"));
        println!(
            "audit verify: {} events in {took:.2?} ({:.0} events/s)",
            verified.as_ref().map(|n| *n).unwrap_or(0),
            events as f64 / took.as_secs_f64()
        );

        // A million operations, written as the engine writes them (with indexes).
        let t = Instant::now();
        let mut id = 1u64;
        while (id as usize) <= ops {
            let changes: Vec<Change> = (id..(id + 2000).min(ops as u64 + 1))
                .map(|i| Change::PutOperation(Box::new(operation(i))))
                .collect();
            id += 2000;
            store.commit(changes, Vec::new()).await.expect("commit");
        }
        println!("operations: {ops} written in {:.1?}", t.elapsed());

        let (page, took) = timed(|| {
            store
                .operations_newest_first(None, 1000, None, |_| true)
                .expect("history")
        });
        println!(
            "history, newest 1,000, no filter: {took:.2?} ({} rows)",
            page.len()
        );

        let rare = |o: &Operation| o.task == "rotate-keys";
        let (indexed, took_indexed) = timed(|| {
            store
                .operations_newest_first(None, 1000, Some((OpField::Task, "rotate-keys")), rare)
                .expect("history")
        });
        let (scanned, took_scanned) = timed(|| {
            store
                .operations_newest_first(None, 1000, None, rare)
                .expect("history")
        });
        assert_eq!(indexed.len(), scanned.len());
        println!(
            "history, task filter (1 in 100), newest 1,000: index {took_indexed:.2?}, full scan {took_scanned:.2?} ({} rows)",
            indexed.len()
        );
        let device = |o: &Operation| o.device == "web-7";
        let (indexed, took_indexed) = timed(|| {
            store
                .operations_newest_first(None, 1000, Some((OpField::Device, "web-7")), device)
                .expect("history")
        });
        let (_, took_scanned) = timed(|| {
            store
                .operations_newest_first(None, 1000, None, device)
                .expect("history")
        });
        println!(
            "history, device filter (1 in 500), newest 1,000: index {took_indexed:.2?}, full scan {took_scanned:.2?} ({} rows)",
            indexed.len()
        );
        let (open, took_index) = timed(|| store.unfinished_operations().expect("open"));
        let (scan, took_scan) = timed(|| {
            store
                .operations_newest_first(None, usize::MAX, None, |o| !o.state.is_final())
                .expect("scan")
        });
        assert_eq!(open.len(), scan.len());
        println!(
            "operations not ended ({} of {ops}; start-up recovery and the Operations screen): index {took_index:.2?}, full scan {took_scan:.2?}",
            open.len()
        );
        store.flush().await.expect("flush");
    }
}
