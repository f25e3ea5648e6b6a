//! TUI figures: time from start to the first frame and to the first page of
//! history with a large history in a real store behind a real server, and
//! the time to render a frame while many operations stream output.
//!
//!     cargo bench --bench ui                        # 100,000 operations, 20 streams
//!     OPS=1000000 STREAMS=50 cargo bench --bench ui
//!
//! Prints figures; asserts nothing about them.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

use gatehouse::client::Client;
use gatehouse::domain::*;
use gatehouse::engine::Event;
use gatehouse::store::{Change, Store};
use gatehouse::ui::{App, Message, Tab, Theme};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn operation(id: u64, state: OpState, live: bool) -> Operation {
    let now = Timestamp::now().0;
    let created = Timestamp(now - (1_000_000 - id as i64 % 1_000_000) * 1000);
    Operation {
        id: Id(id),
        request: Id(id),
        task: ["nginx-status", "nginx-restart", "disk-check", "rotate-logs"][id as usize % 4]
            .into(),
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
        exit_status: (!live).then_some(0),
        created_at: created,
        not_before: created,
        started_at: Some(created),
        finished_at: (!live).then_some(Timestamp(created.0 + 2000)),
        error: None,
        jit_until: None,
        output_bytes: 0,
        output_truncated: false,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // `cargo test --all-targets` builds and starts this too, without
    // `--bench`: it only checks that it builds then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("a benchmark: run it with `cargo bench --bench NAME`");
        return;
    }
    let ops = env("OPS", 100_000);
    let streams = env("STREAMS", 20);
    let frames = env("FRAMES", 600);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");

    // A history of `ops` finished operations, written as the engine writes them.
    let started = Instant::now();
    runtime.block_on(async {
        let store = Store::open(&data).expect("store");
        let batch = 2000;
        let mut id = 1u64;
        while (id as usize) <= ops {
            let changes: Vec<Change> = (id..(id + batch).min(ops as u64 + 1))
                .map(|i| {
                    let state = if i % 17 == 0 {
                        OpState::Failed
                    } else {
                        OpState::Succeeded
                    };
                    Change::PutOperation(Box::new(operation(i, state, false)))
                })
                .collect();
            id += batch;
            store.commit(changes, Vec::new()).await.expect("commit");
        }
        store.flush().await.expect("flush");
    });
    println!(
        "store: {ops} operations written in {:.1?}",
        started.elapsed()
    );

    runtime.block_on(async {
        let socket = dir.path().join("s.sock");
        let server = tokio::spawn(gatehouse::server::run(gatehouse::server::ServerOptions {
            data_dir: data.clone(),
            socket: socket.clone(),
            idle_exit: None,
            shared: false,
            group: None,
            forward: Vec::new(),
            limits: Default::default(),
            connections_per_user: gatehouse::server::CONNECTIONS_PER_USER,
            hello_timeout: gatehouse::server::HELLO_TIMEOUT,
            client_stall: gatehouse::server::CLIENT_STALL,
        }));
        let client = loop {
            match Client::connect(&socket, None, &Default::default()).await {
                Ok(c) => break std::sync::Arc::new(c),
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        };

        // Start to first frame: the UI draws before any answer arrives.
        let t0 = Instant::now();
        let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
        let mut app = App::new(client.login().to_string(), Theme::default());
        let requests = app.start();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for request in requests {
            let client = client.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let result = client.call(request.command()).await.map_err(gatehouse::ui::Failure::from);
                let _ = tx.send(Message::Answer(request, result));
            });
        }
        terminal.draw(|f| app.draw(f)).expect("draw");
        let first_frame = t0.elapsed();
        // Until the first page of history is on screen.
        app.update(Message::Key(crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char('5'),
            crossterm::event::KeyModifiers::NONE,
        )));
        while app.history.ops.is_empty() {
            let Some(message) = rx.recv().await else { break };
            app.update(message);
        }
        terminal.draw(|f| app.draw(f)).expect("draw");
        let history_shown = t0.elapsed();
        println!(
            "start: first frame {first_frame:.2?}; history ({} of {ops} loaded, newest first) on screen {history_shown:.2?}",
            app.history.ops.len()
        );

        // Paging to the end of what is loaded asks for the next page.
        let t1 = Instant::now();
        let mut pages = 0;
        for _ in 0..3 {
            for _ in 0..app.history.ops.len() {
                let asked = app.update(Message::Key(crossterm::event::KeyEvent::new(
                    crossterm::event::KeyCode::Down,
                    crossterm::event::KeyModifiers::NONE,
                )));
                for request in asked {
                    if matches!(request, gatehouse::ui::Call::HistoryBefore(_)) {
                        pages += 1;
                    }
                    let result = client.call(request.command()).await.map_err(gatehouse::ui::Failure::from);
                    app.update(Message::Answer(request, result));
                }
            }
        }
        terminal.draw(|f| app.draw(f)).expect("draw");
        println!(
            "history: cursor walked {} rows (each fetching that operation's output), {pages} more page(s) loaded, in {:.2?}",
            app.history.selected + 1,
            t1.elapsed()
        );
        server.abort();
    });

    // Frame render time while `streams` operations stream output: each frame
    // takes one chunk of 20 lines per operation, then draws.
    let mut app = App::new("alice".into(), Theme::default());
    app.update(Message::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('4'),
        crossterm::event::KeyModifiers::NONE,
    )));
    for i in 0..streams as u64 {
        app.update(Message::Engine(Event::OperationChanged(Box::new(
            operation(10_000_000 + i, OpState::Running, true),
        ))));
    }
    assert_eq!(app.tab, Tab::Operations);
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let mut times = Vec::with_capacity(frames);
    let mut seq = vec![0u64; streams];
    let line = "2026-11-26T12:00:00Z web-17 nginx[4711]: GET /healthz 200 0.002s upstream=127.0.0.1:8080\n";
    for _ in 0..frames {
        for (i, s) in seq.iter_mut().enumerate() {
            app.update(Message::Engine(Event::Output {
                id: Id(10_000_000 + i as u64),
                chunk: OutputChunk {
                    seq: *s,
                    stream: Stream::Stdout,
                    time: Timestamp::now(),
                    bytes: line.repeat(20).into_bytes(),
                },
            }));
            *s += 1;
        }
        let t = Instant::now();
        terminal.draw(|f| app.draw(f)).expect("draw");
        times.push(t.elapsed());
    }
    times.sort();
    let total: Duration = times.iter().sum();
    println!(
        "render with {streams} streams ({} lines each in the log's buffer): mean {:.0?}, p50 {:.0?}, p99 {:.0?}, max {:.0?} per frame",
        frames * 20,
        total / frames as u32,
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[times.len() - 1]
    );
}
