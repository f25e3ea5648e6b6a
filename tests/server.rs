//! The server under a client that sends commands while events stream in.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

use gatehouse::client::Client;
use gatehouse::engine::{Command, Event, RequestSpec, Response};
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
        // Short, so that the test of a client that stops reading is quick.
        // Forty clients of one OS user (through --as) connect at once here.
        connections_per_user: 64,
        hello_timeout: gatehouse::server::HELLO_TIMEOUT,
        client_stall: Duration::from_secs(2),
        limits,
    };
    let server = tokio::spawn(server::run(options));
    let client = loop {
        match Client::connect(&socket, None, &Default::default()).await {
            Ok(c) => break c,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let items = gatehouse::recordfile::parse(RECORDS, std::path::Path::new(".")).unwrap();
    client.call(Command::Import { items }).await.unwrap();
    (client, server)
}

/// Runs a task at once (the owner needs no approval); its operations.
async fn launch(client: &Client, task: &str) -> Vec<gatehouse::domain::Operation> {
    let Response::Requested { operations, .. } = client
        .call(Command::Request(RequestSpec {
            task: task.into(),
            ..Default::default()
        }))
        .await
        .unwrap()
    else {
        panic!("{task} was not run at once")
    };
    operations
}

async fn run_to_end(client: &Client) -> gatehouse::domain::Operation {
    let operations = launch(client, "noisy").await;
    run_until_final(client, operations[0].id).await
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
            debug: false,
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
    let operations = launch(&client, "noisy").await;
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
                debug: false,
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

const PEOPLE: &str = r#"
[[template]]
name = "quick"
executor = "local"
content = "echo quick"
[[task]]
name = "quick"
template = "quick"
environment = "lab"
system = "jump"
devices = ["here"]
credential = "none"
[[template]]
name = "flood"
executor = "local"
content = "seq 1 400000"
[[task]]
name = "flood"
template = "flood"
environment = "lab"
system = "jump"
devices = ["here"]
credential = "none"
[[role]]
name = "local-runner"
# The fixtures' tasks run on this host: that is its own permission.
grants = [{ action = "run-local" }]
[[user]]
login = "alice"
roles = ["User", "local-runner"]
[[user]]
login = "bob"
roles = ["User", "local-runner"]
[[policy]]
name = "lab"
requires_approval = true
users = ["alice"]
environments = ["lab"]
approvers = [{ user = "bob", level = 1 }]
"#;

/// Dozens of clients at once: a request decided through one of them shows
/// in every other's stream at once, while one client that stopped reading
/// is dropped instead of stalling anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_reaches_every_client_and_a_stalled_one_stalls_nobody() {
    let dir = tempfile::tempdir().unwrap();
    let (admin, _server) = start(dir.path(), Default::default()).await;
    let items = gatehouse::recordfile::parse(PEOPLE, std::path::Path::new(".")).unwrap();
    admin.call(Command::Import { items }).await.unwrap();
    let socket = dir.path().join("s.sock");

    // A client that subscribes and then never reads again.
    let mut stalled = tokio::net::UnixStream::connect(&socket).await.unwrap();
    gatehouse::server::wire::write_hello(
        &mut stalled,
        &gatehouse::server::wire::Hello { as_login: None },
    )
    .await
    .unwrap();
    let _: gatehouse::server::wire::Welcome = gatehouse::server::wire::read_hello(&mut stalled)
        .await
        .unwrap();
    gatehouse::server::wire::write_frame(
        &mut stalled,
        &gatehouse::server::wire::ClientFrame {
            id: 1,
            command: Command::Subscribe,
        },
    )
    .await
    .unwrap();

    let mut watchers = Vec::new();
    for i in 0..40 {
        let who = if i % 2 == 0 { "alice" } else { "bob" };
        let client = Client::connect(&socket, Some(who), &Default::default())
            .await
            .unwrap();
        let events = client.subscribe().await.unwrap();
        watchers.push((client, events));
    }
    let alice = &watchers[0].0;
    let Response::Filed(filed) = alice
        .call(Command::Request(RequestSpec {
            task: "quick".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
    else {
        panic!("not filed for approval")
    };
    let request = filed.id;
    let decided_at = std::time::Instant::now();
    let bob = &watchers[1].0;
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        bob.call(Command::Approve {
            id: request,
            comment: "ok".into(),
            until: None,
            totp: None,
        }),
    )
    .await
    .expect("the approval waited on someone");
    answer.unwrap();
    for (i, (_, events)) in watchers.iter_mut().enumerate() {
        let seen = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(event) = events.recv().await {
                if let gatehouse::engine::Event::RequestChanged(r) = event {
                    if r.id == request
                        && !matches!(r.state, gatehouse::domain::RequestState::Pending { .. })
                    {
                        return true;
                    }
                }
            }
            false
        })
        .await;
        assert_eq!(seen, Ok(true), "client {i} never saw the decision");
    }
    assert!(decided_at.elapsed() < Duration::from_secs(10));

    // Some clients that keep reading (the forty have made their point).
    drop(watchers);
    let mut readers = Vec::new();
    for _ in 0..5 {
        let client = Client::connect(&socket, None, &Default::default())
            .await
            .unwrap();
        let mut events = client.subscribe().await.unwrap();
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        readers.push(client);
    }

    // A flood of output fills the stalled client's socket (output it misses
    // stays in the store): once nothing it is sent moves for a while, it is
    // let go.
    let operations = launch(&admin, "flood").await;
    run_until_final(&admin, operations[0].id).await;
    // A burst of 1,500 record changes is one event per kind: nobody who
    // reads is dropped for it.
    let many: String = (0..1500)
        .map(|i| format!("[[environment]]\nname = \"e{i}\"\n"))
        .collect();
    let items = gatehouse::recordfile::parse(&many, std::path::Path::new(".")).unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        admin.call(Command::Import { items }),
    )
    .await
    .expect("the import waited on the stalled client")
    .unwrap();
    // The stalled client goes on not reading for longer than the server's
    // patience (2 s here); then its connection has been closed.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let dropped = tokio::time::timeout(Duration::from_secs(20), async {
        use tokio::io::AsyncReadExt;
        let mut sink = vec![0u8; 1 << 16];
        loop {
            match stalled.read(&mut sink).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert_eq!(dropped, Ok(true), "the stalled client was never dropped");
    assert!(matches!(
        admin.call(Command::Whoami).await,
        Ok(Response::Whoami { .. })
    ));
    for (i, client) in readers.iter().enumerate() {
        let answer =
            tokio::time::timeout(Duration::from_secs(10), client.call(Command::Whoami)).await;
        assert!(
            matches!(answer, Ok(Ok(Response::Whoami { .. }))),
            "reading client {i} was dropped: {answer:?}"
        );
    }
}

async fn run_until_final(
    client: &Client,
    id: gatehouse::domain::Id,
) -> gatehouse::domain::Operation {
    let start = std::time::Instant::now();
    loop {
        let Response::Operations(ops) = client.call(Command::Operation { id }).await.unwrap()
        else {
            panic!()
        };
        if ops[0].state.is_final() {
            return ops[0].clone();
        }
        assert!(start.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client and a server of different protocol versions say so, both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_another_protocol_version_gets_a_clear_message() {
    use gatehouse::server::wire::{self, Hello, Welcome, PROTOCOL_VERSION};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (_admin, _server) = start(dir.path(), Default::default()).await;
    let socket = dir.path().join("s.sock");

    // An old client talks to this server.
    let mut old = tokio::net::UnixStream::connect(&socket).await.unwrap();
    let mut body = b"GATEHSE\0".to_vec();
    body.extend((PROTOCOL_VERSION + 41).to_be_bytes());
    body.extend(wire::encode(&Hello { as_login: None }).unwrap());
    old.write_u32(body.len() as u32).await.unwrap();
    old.write_all(&body).await.unwrap();
    let welcome: Welcome = wire::read_hello(&mut old).await.unwrap();
    let message = welcome.result.unwrap_err();
    assert_eq!(
        message,
        format!(
            "the peer speaks protocol version {}, this program {PROTOCOL_VERSION}: run the same Gatehouse version on both sides",
            PROTOCOL_VERSION + 41
        )
    );

    // Something that is not Gatehouse at all.
    let mut stranger = tokio::net::UnixStream::connect(&socket).await.unwrap();
    stranger
        .write_all(b"\0\0\0\x10GET / HTTP/1.1\r\n")
        .await
        .unwrap();
    let welcome: Welcome = wire::read_hello(&mut stranger).await.unwrap();
    assert_eq!(
        welcome.result.unwrap_err(),
        "the peer is not a Gatehouse program"
    );

    // This client talks to a server of another version.
    let other = dir.path().join("other.sock");
    let listener = tokio::net::UnixListener::bind(&other).unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).await.unwrap();
        let mut hello = vec![0u8; u32::from_be_bytes(len) as usize];
        stream.read_exact(&mut hello).await.unwrap();
        let mut body = b"GATEHSE\0".to_vec();
        body.extend((PROTOCOL_VERSION + 1).to_be_bytes());
        body.extend(
            wire::encode(&Welcome {
                result: Ok("x".into()),
                notices: Vec::new(),
            })
            .unwrap(),
        );
        stream.write_u32(body.len() as u32).await.unwrap();
        stream.write_all(&body).await.unwrap();
    });
    let err = Client::connect(&other, None, &Default::default())
        .await
        .err()
        .expect("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "the peer speaks protocol version {}, this program {PROTOCOL_VERSION}: run the same Gatehouse version on both sides",
            PROTOCOL_VERSION + 1
        )
    );
}

/// Visibility follows permission, for events too: a user without
/// view-executions receives none of another user's operations or output,
/// an auditor does, and a user disabled while subscribed is cut off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_receives_only_what_it_may_see_and_is_cut_off_when_disabled() {
    use gatehouse::engine::Event;
    let dir = tempfile::tempdir().unwrap();
    let (root, server) = start(dir.path(), Default::default()).await;
    let people = r#"
[[role]]
name = "noisy-runner"
resources = [{ kind = "task", name = "noisy", levels = ["read", "run"] }]
[[policy]]
name = "lab"
users = ["alice"]
environments = ["lab"]
[[role]]
name = "local-runner"
# The fixtures' tasks run on this host: that is its own permission.
grants = [{ action = "run-local" }]
[[user]]
login = "alice"
roles = ["User", "local-runner", "noisy-runner"]
[[user]]
login = "carol"
roles = ["User", "local-runner"]
[[user]]
login = "dave"
roles = ["Auditor"]
"#;
    let items = gatehouse::recordfile::parse(people, std::path::Path::new(".")).unwrap();
    root.call(Command::Import { items }).await.unwrap();
    let socket = dir.path().join("s.sock");
    let connect = |who: &'static str| {
        let socket = socket.clone();
        async move {
            let client = Client::connect(&socket, Some(who), &Default::default())
                .await
                .unwrap();
            let events = client.subscribe().await.unwrap();
            (client, events)
        }
    };
    let (_carol, mut carol_events) = connect("carol").await;
    let (_dave, mut dave_events) = connect("dave").await;
    let (alice, _alice_events) = connect("alice").await;
    let Response::Requested { operations, .. } = alice
        .call(Command::Request(RequestSpec {
            task: "noisy".into(),
            ..Default::default()
        }))
        .await
        .unwrap()
    else {
        panic!("not run at once")
    };
    let op = operations[0].id;
    // The auditor sees alice's operation end, with output before it.
    let mut dave_output = 0;
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(event) = dave_events.recv().await {
            match event {
                Event::Output { id, .. } if id == op => dave_output += 1,
                Event::OperationChanged(o) if o.id == op && o.state.is_final() => break,
                _ => {}
            }
        }
    })
    .await
    .expect("the auditor saw the operation end");
    assert!(dave_output > 0, "the auditor saw no output");
    // carol saw nothing of it, and may not read it either.
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(event) = carol_events.try_recv() {
        match event {
            Event::Output { id, .. } => assert_ne!(id, op, "carol got alice's output"),
            Event::OperationChanged(o) => assert_ne!(o.id, op, "carol got alice's operation"),
            _ => {}
        }
    }
    let carol = Client::connect(&socket, Some("carol"), &Default::default())
        .await
        .unwrap();
    let err = carol
        .call(Command::Output {
            id: op,
            from: 0,
            limit: 10,
            debug: false,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("may not see operation"), "{err}");
    let Response::Operations(seen) = carol
        .call(Command::History(Default::default()))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(seen.is_empty(), "carol's history shows {seen:?}");
    // alice sees her own without view-executions.
    let Response::Operations(own) = alice
        .call(Command::History(Default::default()))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(own.len(), 1);
    // Disabled while subscribed: the connection ends at once.
    root.call(Command::SetEnabled {
        kind: gatehouse::domain::Kind::User,
        name: "carol".into(),
        enabled: false,
    })
    .await
    .unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        while carol_events.recv().await.is_some() {}
    })
    .await
    .expect("carol's connection was not closed");
    server.abort();
}

/// The end of an operation is committed with its audit event and both are
/// published: a subscriber (the TUI's Audit screen) hears of the new audit
/// event as it happens, and the tail it then reads holds `operation.finish`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operations_end_reaches_subscribers_as_an_audit_event() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _server) = start(dir.path(), Default::default()).await;
    let mut events = client.subscribe().await.unwrap();
    let operations = launch(&client, "noisy").await;
    let id = operations[0].id;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut ended = false;
    let mut seq_after_end = None;
    while seq_after_end.is_none() {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("no audit event after the operation ended")
            .expect("the stream ended");
        match event {
            Event::OperationChanged(op) if op.id == id && op.state.is_final() => ended = true,
            Event::AuditAppended { seq } if ended => seq_after_end = Some(seq),
            _ => {}
        }
    }
    let Response::AuditEvents(tail) = client.call(Command::AuditTail { limit: 20 }).await.unwrap()
    else {
        panic!("not audit events")
    };
    let finish = tail
        .iter()
        .find(|e| e.action == "operation.finish" && e.target.contains(&format!("operation {id}")))
        .expect("operation.finish in the tail");
    assert!(finish.seq <= seq_after_end.unwrap());
}

/// Errors keep their type from the engine to the client: a screen learns
/// the field (and the line and column in it) of a validation error, and
/// the variable of a value that does not fit, without reading any text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_arrive_typed_with_their_field_and_position() {
    use gatehouse::client::ClientError;
    use gatehouse::engine::EngineError;
    let dir = tempfile::tempdir().unwrap();
    let (client, _server) = start(dir.path(), Default::default()).await;
    let import = |text: &str| {
        let items = gatehouse::recordfile::parse(text, std::path::Path::new(".")).unwrap();
        Command::Import { items }
    };
    let bad_expect = import(
        "[[template]]\nname = \"x\"\nexecutor = \"ssh-expect\"\ncontent = \"# a comment\\nexpect 'unterminated\"\n",
    );
    match client.call(bad_expect).await {
        Err(ClientError::Engine(EngineError::Invalid {
            field: Some(field),
            at: Some((line, _column)),
            ..
        })) => {
            assert_eq!(field, "content");
            assert_eq!(line, 2);
        }
        other => panic!("not a typed content error: {other:?}"),
    }
    // A value that does not fit its variable's pattern names the variable.
    let with_var = import(
        "[[template]]\nname = \"v\"\nexecutor = \"local\"\ncontent = \"echo [#WHAT#]\"\n[[template.variable]]\nname = \"WHAT\"\npattern = \"[a-z]+\"\n[[task]]\nname = \"v\"\ntemplate = \"v\"\nenvironment = \"lab\"\nsystem = \"jump\"\ndevices = [\"here\"]\ncredential = \"none\"\n",
    );
    client.call(with_var).await.unwrap();
    let spec = RequestSpec {
        task: "v".into(),
        variables: [("WHAT".to_string(), "NOT LOWER".to_string())].into(),
        ..Default::default()
    };
    match client.call(Command::Request(spec)).await {
        Err(ClientError::Engine(EngineError::Variable { variable, .. })) => {
            assert_eq!(variable, "WHAT")
        }
        other => panic!("not a typed variable error: {other:?}"),
    }
}

/// A slow command (a host-key scan of a host that accepts and then says
/// nothing) holds back neither the other answers on the same connection
/// nor its events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_command_does_not_hold_back_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (client, _server) = start(dir.path(), Default::default()).await;
    // A host that accepts connections and never speaks.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            open.push(stream);
        }
    });
    let items = gatehouse::recordfile::parse(
        &format!(
            "[[device]]\nname = \"mute\"\naddress = \"127.0.0.1\"\nport = {port}\nenvironment = \"lab\"\nsystem = \"jump\"\n"
        ),
        std::path::Path::new("."),
    )
    .unwrap();
    client.call(Command::Import { items }).await.unwrap();
    let client = std::sync::Arc::new(client);
    let scanning = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call(Command::ScanHostKeys {
                    device: "mute".into(),
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!scanning.is_finished(), "the scan is still waiting");
    let started = std::time::Instant::now();
    let answer = client.call(Command::Whoami).await.unwrap();
    assert!(matches!(answer, Response::Whoami { .. }));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered after {:?}",
        started.elapsed()
    );
    assert!(
        !scanning.is_finished(),
        "answered while the scan still waits"
    );
}
