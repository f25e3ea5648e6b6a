//! The server under a client that sends commands while events stream in.

use gatehouse::client::Client;
use gatehouse::engine::{Command, RequestSpec, Response};
use gatehouse::server::{self, ServerOptions};
use std::time::Duration;

const RECORDS: &str = r#"
[[environment]]
name = "lab"
[[system]]
name = "jump"
[[device]]
name = "here"
address = "127.0.0.1"
environment = "lab"
system = "jump"
[[credential]]
name = "none"
username = "root"
[[template]]
name = "noisy"
executor = "local"
content = "seq 1 50000"
[[task]]
name = "noisy"
template = "noisy"
environment = "lab"
system = "jump"
devices = ["here"]
credential = "none"
"#;

async fn start(
    dir: &std::path::Path,
    limits: gatehouse::exec::Limits,
) -> (Client, tokio::task::JoinHandle<color_eyre::Result<()>>) {
    let socket = dir.join("s.sock");
    let options = ServerOptions {
        data_dir: dir.join("data"),
        socket: socket.clone(),
        idle_exit: None,
        shared: false,
        group: None,
        forward: Vec::new(),
        limits,
    };
    let server = tokio::spawn(server::run(options));
    let client = loop {
        match Client::connect(&socket, None).await {
            Ok(c) => break c,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let items = gatehouse::recordfile::parse(RECORDS, std::path::Path::new(".")).unwrap();
    client.call(Command::Import { items }).await.unwrap();
    (client, server)
}

async fn run_to_end(client: &Client) -> gatehouse::domain::Operation {
    let Response::Requested { operations, .. } = client
        .call(Command::Request(RequestSpec {
            task: "noisy".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
    else {
        panic!("not requested")
    };
    let start = std::time::Instant::now();
    loop {
        let Response::Operations(ops) = client
            .call(Command::Operation {
                id: operations[0].id,
            })
            .await
            .unwrap()
        else {
            panic!()
        };
        if ops[0].state.is_final() {
            return ops[0].clone();
        }
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_past_the_cap_is_cut_with_a_clear_marker() {
    let dir = tempfile::tempdir().unwrap();
    let limits = gatehouse::exec::Limits {
        output_cap: 10_000,
        ..Default::default()
    };
    let (client, _server) = start(dir.path(), limits).await;
    let op = run_to_end(&client).await;
    assert_eq!(op.state, gatehouse::domain::OpState::Succeeded);
    assert!(op.output_truncated);
    let Response::Output(chunks) = client
        .call(Command::Output {
            id: op.id,
            from: 0,
            limit: 100_000,
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    let stored: usize = chunks
        .iter()
        .filter(|c| c.stream != gatehouse::domain::Stream::System)
        .map(|c| c.bytes.len())
        .sum();
    assert!(stored <= 10_000, "{stored}");
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(&c.bytes).into_owned())
        .collect();
    assert!(text.contains("output truncated"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_keep_their_answers_while_events_stream_on_the_same_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (client, server) = start(dir.path(), Default::default()).await;
    let mut events = client.subscribe().await.unwrap();
    let Response::Requested { operations, .. } = client
        .call(Command::Request(RequestSpec {
            task: "noisy".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
    else {
        panic!("not requested")
    };
    // Drain events concurrently, as the TUI does.
    let drain = tokio::spawn(async move {
        let mut n = 0u64;
        while events.recv().await.is_some() {
            n += 1;
        }
        n
    });
    for _ in 0..300 {
        let answer =
            tokio::time::timeout(Duration::from_secs(10), client.call(Command::Whoami)).await;
        assert!(
            matches!(answer, Ok(Ok(Response::Whoami { .. }))),
            "a command lost its answer"
        );
    }
    // The whole output is in the store, in order.
    let id = operations[0].id;
    let mut text = Vec::new();
    let start = std::time::Instant::now();
    loop {
        let Response::Operations(ops) = client.call(Command::Operation { id }).await.unwrap()
        else {
            panic!()
        };
        if ops[0].state.is_final() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut from = 0;
    loop {
        let Response::Output(chunks) = client
            .call(Command::Output {
                id,
                from,
                limit: 1000,
            })
            .await
            .unwrap()
        else {
            panic!()
        };
        let Some(last) = chunks.last() else { break };
        from = last.seq + 1;
        for c in chunks
            .iter()
            .filter(|c| c.stream == gatehouse::domain::Stream::Stdout)
        {
            text.extend_from_slice(&c.bytes);
        }
    }
    let expected: String = (1..=50000).map(|i| format!("{i}\n")).collect();
    assert_eq!(String::from_utf8(text).unwrap(), expected);
    client.call(Command::Shutdown).await.ok();
    drop(client);
    assert!(drain.await.unwrap() > 0);
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
