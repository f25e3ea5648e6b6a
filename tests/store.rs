//! The sled store: records round-trip, template revisions are kept, the
//! audit chain catches tampering, schema versions are enforced, and output
//! files survive torn ends, backups and restores.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use gatehouse::domain::{Environment, Executor, Id, Kind, Meta, Record, Template};
use gatehouse::store::kv::Write;
use gatehouse::store::{decode, encode, AuditEvent, Change, NewAuditEvent, Store};

fn env(store: &Store, name: &str) -> Record {
    let mut meta = Meta::named(name);
    meta.id = store.next_id().unwrap();
    meta.revision = 1;
    Record::Environment(Environment {
        meta,
        ..Default::default()
    })
}

/// sled lets go of its file lock when its background threads are done with
/// a dropped database, a moment after the drop: opening again in the same
/// process waits for that (a server never reopens its own store).
fn retry_lock<T, E: std::fmt::Debug>(mut open: impl FnMut() -> Result<T, E>) -> T {
    let start = std::time::Instant::now();
    loop {
        match open() {
            Ok(v) => return v,
            Err(e)
                if start.elapsed() < std::time::Duration::from_secs(10)
                    && format!("{e:?}").contains("lock") =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("cannot reopen the store: {e:?}"),
        }
    }
}

fn reopen(dir: &std::path::Path) -> Store {
    retry_lock(|| Store::open(dir))
}

fn event(n: usize) -> NewAuditEvent {
    NewAuditEvent::new(
        "tester",
        "test.event",
        format!("target {n}"),
        format!("details {n}"),
    )
}

#[tokio::test]
async fn records_round_trip_in_creation_order_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..300).map(|i| format!("env-{i:03}")).collect();
    {
        let store = Store::open(dir.path()).unwrap();
        let changes = names
            .iter()
            .map(|n| Change::Put(Box::new(env(&store, n))))
            .collect();
        store.commit(changes, vec![event(0)]).await.unwrap();
    }
    let store = reopen(dir.path());
    let listed: Vec<String> = store
        .list(Kind::Environment)
        .unwrap()
        .iter()
        .map(|r| r.name().to_string())
        .collect();
    assert_eq!(
        listed, names,
        "ids are keyed big-endian so sled's order is creation order"
    );
    let found = store.find(Kind::Environment, "env-150").unwrap().unwrap();
    assert_eq!(
        store
            .get(Kind::Environment, found.meta().id)
            .unwrap()
            .unwrap(),
        found
    );
    // New ids keep growing after a reopen.
    let next = store.next_id().unwrap();
    assert!(store
        .list(Kind::Environment)
        .unwrap()
        .iter()
        .all(|r| r.meta().id < next));
}

#[tokio::test]
async fn every_template_save_is_a_revision_that_stays() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut t = Template {
        meta: Meta::named("t"),
        executor: Executor::SshScript,
        content: "echo one".into(),
        ..Template::default()
    };
    t.meta.id = store.next_id().unwrap();
    t.meta.revision = 1;
    store
        .commit(
            vec![Change::Put(Box::new(Record::Template(t.clone())))],
            vec![],
        )
        .await
        .unwrap();
    t.meta.revision = 2;
    t.content = "echo two".into();
    store
        .commit(
            vec![Change::Put(Box::new(Record::Template(t.clone())))],
            vec![],
        )
        .await
        .unwrap();
    let revisions = store.template_revisions(t.meta.id).unwrap();
    assert_eq!(
        revisions
            .iter()
            .map(|r| r.content.as_str())
            .collect::<Vec<_>>(),
        ["echo one", "echo two"]
    );
    assert_eq!(
        store
            .template_revision(t.meta.id, 1)
            .unwrap()
            .unwrap()
            .content,
        "echo one"
    );
    assert!(store
        .template_revision(Id(t.meta.id.0 + 1), 1)
        .unwrap()
        .is_none());
}

async fn store_with_events(n: usize) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .append_audit((1..=n).map(event).collect())
        .await
        .unwrap();
    (dir, store)
}

fn read_event(store: &Store, seq: u64) -> AuditEvent {
    decode(
        "audit",
        &store
            .backend_for_tests()
            .get("audit", &seq.to_be_bytes())
            .unwrap()
            .unwrap(),
    )
    .unwrap()
}

/// Writes straight into the audit tree, past the store (as an attacker
/// with the files would).
fn tamper(store: &Store, writes: Vec<Write>) {
    store.backend_for_tests().apply(writes).unwrap();
}

#[tokio::test]
async fn an_intact_chain_verifies_and_survives_reopen() {
    let (dir, store) = store_with_events(50).await;
    assert_eq!(store.verify_audit().unwrap(), Ok(50));
    drop(store);
    let store = reopen(dir.path());
    store.append_audit(vec![event(51)]).await.unwrap();
    assert_eq!(store.verify_audit().unwrap(), Ok(51));
    assert_eq!(
        store
            .audit_tail(3)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        [49, 50, 51]
    );
}

#[tokio::test]
async fn an_edited_event_is_found() {
    let (_dir, store) = store_with_events(10).await;
    let mut e = read_event(&store, 4);
    e.details = "nothing to see here".into();
    tamper(
        &store,
        vec![Write::put("audit", 4u64.to_be_bytes(), encode(&e).unwrap())],
    );
    let broken = store.verify_audit().unwrap().unwrap_err();
    assert_eq!(broken.seq, 4);
    assert!(broken.reason.contains("edited"), "{broken}");
}

#[tokio::test]
async fn an_edited_event_with_a_recomputed_hash_breaks_the_next_link() {
    let (_dir, store) = store_with_events(10).await;
    let mut e = read_event(&store, 4);
    e.actor = "someone-else".into();
    e.hash = e.compute_hash();
    tamper(
        &store,
        vec![Write::put("audit", 4u64.to_be_bytes(), encode(&e).unwrap())],
    );
    let broken = store.verify_audit().unwrap().unwrap_err();
    assert_eq!(broken.seq, 5);
}

#[tokio::test]
async fn a_removed_event_is_found() {
    let (_dir, store) = store_with_events(10).await;
    tamper(&store, vec![Write::delete("audit", 6u64.to_be_bytes())]);
    let broken = store.verify_audit().unwrap().unwrap_err();
    assert_eq!(broken.seq, 7);
    assert!(broken.reason.contains("removed"), "{broken}");
}

#[tokio::test]
async fn reordered_events_are_found() {
    let (_dir, store) = store_with_events(10).await;
    let kv = store.backend_for_tests();
    let a = kv.get("audit", &3u64.to_be_bytes()).unwrap().unwrap();
    let b = kv.get("audit", &8u64.to_be_bytes()).unwrap().unwrap();
    tamper(
        &store,
        vec![
            Write::put("audit", 3u64.to_be_bytes(), b),
            Write::put("audit", 8u64.to_be_bytes(), a),
        ],
    );
    let broken = store.verify_audit().unwrap().unwrap_err();
    assert_eq!(broken.seq, 3);
}

#[test]
fn a_value_of_another_format_is_refused_not_misread() {
    let mut bytes = encode(&"hello".to_string()).unwrap();
    assert_eq!(decode::<String>("t", &bytes).unwrap(), "hello");
    bytes[0] = 99;
    let err = decode::<String>("t", &bytes).unwrap_err();
    assert!(err.to_string().contains("value format version 99"), "{err}");
}

#[test]
fn a_store_from_a_newer_program_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    {
        let db = retry_lock(|| sled::open(dir.path().join("store")));
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let err = loop {
        match Store::open(dir.path()) {
            Err(e) if e.to_string().contains("lock") => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => break e,
            Ok(_) => panic!("a store from a newer program was opened"),
        }
    };
    assert!(err.to_string().contains("newer"), "{err}");
}

/// A store written by schema version 1 (before the operation indexes),
/// kept as a fixture: opened by this program it is migrated, keeps every
/// record, operation and audit event, and its history filters use the new
/// index.
#[test]
fn a_version_1_store_is_migrated_on_start() {
    use std::os::unix::fs::PermissionsExt;
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema-v1");
    let d = common::DataDir::new();
    std::fs::create_dir_all(d.path().join("store")).unwrap();
    for file in ["store/conf", "store/db", "store.key"] {
        std::fs::copy(fixture.join(file), d.path().join(file)).unwrap();
    }
    std::fs::set_permissions(
        d.path().join("store.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    {
        let db = retry_lock(|| sled::open(d.path().join("store")));
        let version = db
            .open_tree("meta")
            .unwrap()
            .get("schema_version")
            .unwrap()
            .unwrap();
        assert_eq!(
            version.as_ref(),
            1u32.to_be_bytes(),
            "the fixture is not at version 1"
        );
    }

    // Every audit event and record is there, the chain intact.
    let verified = d.ok(&["audit", "verify"]);
    // 20 from version 1, the built-in User role losing view-executions,
    // the Auditor gaining view-policies, and the server's start.
    assert!(
        verified.contains("verified: 23 events, chain intact"),
        "{verified}"
    );
    let export = d.ok(&["export"]);
    for name in [
        "name = \"lab\"",
        "name = \"here\"",
        "name = \"there\"",
        "name = \"hello\"",
        "name = \"fail\"",
        "login = \"alice\"",
    ] {
        assert!(
            export.contains(name),
            "{name} lost in the migration:\n{export}"
        );
    }
    // History, whole and narrowed through the new index.
    let ids = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["history", "--json"];
        all.extend_from_slice(args);
        d.ok(&all)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(ids(&[]), vec![19, 17, 16]);
    assert_eq!(ids(&["--task", "hello"]), vec![17, 16]);
    assert_eq!(ids(&["--device", "there"]), vec![17]);
    assert_eq!(ids(&["--user", "root"]), vec![19, 17, 16]);
    assert_eq!(ids(&["--user", "alice"]), Vec::<u64>::new());
    assert_eq!(ids(&["--text", "FAIL"]), vec![19]);
    assert_eq!(ids(&["--text", "there", "--task", "hello"]), vec![17]);
    // Output moved from the store's tree to a file per operation (version 3).
    for id in ["16", "17", "19"] {
        let logs = d.ok(&["logs", id]);
        assert!(logs.contains("hello v1 fixture"), "{logs}");
        assert!(logs.contains("exit status 0"), "{logs}");
    }
    assert!(d.path().join("output/00000000000000000017.out").is_file());
    // New operations are indexed as they are made.
    d.ok(&["request", "fail", "--wait"]);
    assert_eq!(ids(&["--task", "fail"]).len(), 2);
    assert_eq!(ids(&["--device", "here"]).len(), 3);

    d.ok(&["shutdown"]);
    let store = reopen(d.path());
    assert_eq!(
        store.schema_version().unwrap(),
        Some(gatehouse::store::SCHEMA_VERSION)
    );
    assert_eq!(gatehouse::store::SCHEMA_VERSION, 7);
    assert_eq!(
        store
            .output(gatehouse::domain::Id(16), 0, 10)
            .unwrap()
            .len(),
        3
    );
    drop(store);
    let db = retry_lock(|| sled::open(d.path().join("store")));
    assert!(
        !db.tree_names().iter().any(|n| n.as_ref() == b"output"),
        "the output tree was left in the store"
    );
}

/// Output lives in a file per operation: a backup taken while an operation
/// is still writing (with a record torn at the end, as a kill leaves one)
/// holds every whole chunk written so far and nothing after, and a restore
/// gives them back readable, after which the operation's writer goes on.
#[test]
fn a_backup_holds_the_output_written_so_far_and_restores_it() {
    use gatehouse::domain::{OutputChunk, Stream, Timestamp};
    let chunk = |seq: u64| OutputChunk {
        seq,
        stream: Stream::Stdout,
        time: Timestamp(seq as i64),
        bytes: format!("line {seq}\n").into_bytes(),
    };
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let backup = scratch.path().join("store.backup");
    let (op, other) = (Id(40), Id(41));
    {
        let store = Store::open(dir.path()).unwrap();
        let mut done = store.output_writer(other).unwrap();
        for seq in 0..3 {
            done.append(&chunk(seq)).unwrap();
        }
        done.sync().unwrap();
        let mut running = store.output_writer(op).unwrap();
        for seq in 0..1000 {
            running.append(&chunk(seq)).unwrap();
        }
        // Half a record at the end of the running operation's file.
        let path = dir.path().join("output/00000000000000000040.out");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut file, &[0, 0, 0, 200, 1, 2, 3]).unwrap();
        store
            .backup_to(std::fs::File::create(&backup).unwrap())
            .unwrap();
        // What comes after the backup is not in it.
        drop(running);
        let mut running = store.output_writer(op).unwrap();
        assert_eq!(running.next_seq(), 1000, "the torn record is cut off");
        running.append(&chunk(1000)).unwrap();
        assert_eq!(store.output(op, 990, 100).unwrap().len(), 11);
    }
    let restored = tempfile::tempdir().unwrap();
    Store::restore(restored.path(), &backup).unwrap();
    std::fs::copy(
        dir.path().join("store.key"),
        restored.path().join("store.key"),
    )
    .unwrap();
    let store = reopen(restored.path());
    let mut all = Vec::new();
    loop {
        let page = store.output(op, all.len() as u64, 300).unwrap();
        if page.is_empty() {
            break;
        }
        all.extend(page);
    }
    assert_eq!(all.len(), 1000);
    assert!(all.iter().enumerate().all(|(i, c)| c == &chunk(i as u64)));
    assert_eq!(
        store.output(other, 0, 10).unwrap(),
        vec![chunk(0), chunk(1), chunk(2)]
    );
    let mut writer = store.output_writer(op).unwrap();
    assert_eq!(writer.next_seq(), 1000);
    writer.append(&chunk(1000)).unwrap();
    assert_eq!(store.output(op, 1000, 10).unwrap(), vec![chunk(1000)]);
}

/// Schema 4: a request stored by schema 3 (no chained tasks pinned, no
/// schedule) is rewritten on start and reads back whole.
#[test]
fn a_version_3_request_is_migrated_with_its_fields_kept() {
    use gatehouse::domain::{ExecutionRequest, RequestState, Timestamp};
    use std::collections::BTreeMap;
    #[derive(serde::Serialize)]
    struct PinnedV3 {
        task_revision: u32,
        template_id: Id,
        template_revision: u32,
        credential_revision: u32,
        devices: Vec<(String, u32)>,
    }
    #[derive(serde::Serialize)]
    struct RequestV3 {
        id: Id,
        task: String,
        devices: Vec<String>,
        variables: BTreeMap<String, String>,
        reason: Option<String>,
        justification: Option<String>,
        governance_id: Option<String>,
        requester: String,
        policy: Option<String>,
        window_start: Timestamp,
        window_end: Timestamp,
        state: RequestState,
        decisions: Vec<gatehouse::domain::Decision>,
        pinned: PinnedV3,
        created_at: Timestamp,
        operations: Vec<Id>,
        void_reason: Option<String>,
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        drop(store);
        // The store's own files are let go a moment after it is dropped.
        let db = retry_lock(|| sled::open(dir.path().join("store")));
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &3u32.to_be_bytes())
            .unwrap();
        let old = RequestV3 {
            id: Id(7),
            task: "restart".into(),
            devices: vec!["web-1".into()],
            variables: BTreeMap::from([("WHAT".into(), "nginx".into())]),
            reason: None,
            justification: Some("ticket 4".into()),
            governance_id: None,
            requester: "alice".into(),
            policy: Some("prod".into()),
            window_start: Timestamp(1_000),
            window_end: Timestamp(2_000),
            state: RequestState::Pending { level: 1 },
            decisions: vec![],
            pinned: PinnedV3 {
                task_revision: 3,
                template_id: Id(2),
                template_revision: 5,
                credential_revision: 1,
                devices: vec![("web-1".into(), 2)],
            },
            created_at: Timestamp(900),
            operations: vec![],
            void_reason: None,
        };
        db.open_tree("requests")
            .unwrap()
            .insert(7u64.to_be_bytes(), encode(&old).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(
        store.schema_version().unwrap(),
        Some(gatehouse::store::SCHEMA_VERSION)
    );
    let req: ExecutionRequest = store.request(Id(7)).unwrap().expect("the request");
    assert_eq!(req.requester, "alice");
    assert_eq!(req.justification.as_deref(), Some("ticket 4"));
    assert_eq!(req.variables["WHAT"], "nginx");
    assert_eq!(req.pinned.template_revision, 5);
    assert_eq!(req.pinned.devices, vec![("web-1".to_string(), 2)]);
    assert!(req.pinned.children.is_empty());
    assert_eq!(req.schedule, None);
    assert_eq!(req.state, RequestState::Pending { level: 1 });
}

/// Schema 5: a device stored by schema 4 with one pinned host key keeps it
/// as its one key of several; templates (and their revisions), tasks,
/// credentials and environments read back with the new fields at their
/// defaults and their revisions unchanged.
#[test]
fn version_4_records_are_migrated_with_their_fields_and_revisions_kept() {
    use gatehouse::domain::{HostKey, Variable};
    #[derive(serde::Serialize)]
    struct DeviceV4 {
        meta: Meta,
        address: String,
        port: u16,
        product: String,
        tags: Vec<String>,
        environment: String,
        system: String,
        host_key: Option<HostKey>,
    }
    #[derive(serde::Serialize)]
    struct TemplateV4 {
        meta: Meta,
        description: String,
        executor: Executor,
        execution_type: gatehouse::domain::ExecutionType,
        content: String,
        variables: Vec<Variable>,
    }
    #[derive(serde::Serialize)]
    #[allow(dead_code)]
    enum RecordV4 {
        Environment(Meta),
        System(()),
        Device(DeviceV4),
        Credential(()),
        Reason(()),
        Template(TemplateV4),
    }
    let key = HostKey::parse(
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        drop(store);
        let db = retry_lock(|| sled::open(dir.path().join("store")));
        db.open_tree("meta")
            .unwrap()
            .insert("schema_version", &4u32.to_be_bytes())
            .unwrap();
        let mut meta = Meta::named("web-1");
        meta.id = Id(3);
        meta.revision = 4;
        let device = RecordV4::Device(DeviceV4 {
            meta,
            address: "10.0.0.5".into(),
            port: 2222,
            product: "Linux".into(),
            tags: vec!["web".into()],
            environment: "prod".into(),
            system: "shop".into(),
            host_key: Some(key.clone()),
        });
        db.open_tree("device")
            .unwrap()
            .insert(3u64.to_be_bytes(), encode(&device).unwrap())
            .unwrap();
        let mut meta = Meta::named("hello");
        meta.id = Id(9);
        meta.revision = 2;
        let template = TemplateV4 {
            meta,
            description: "says hello".into(),
            executor: Executor::SshScript,
            execution_type: Default::default(),
            content: "echo hello".into(),
            variables: vec![],
        };
        let mut key_bytes = 9u64.to_be_bytes().to_vec();
        key_bytes.extend(2u32.to_be_bytes());
        db.open_tree("template_revisions")
            .unwrap()
            .insert(key_bytes, encode(&template).unwrap())
            .unwrap();
        db.open_tree("template")
            .unwrap()
            .insert(
                9u64.to_be_bytes(),
                encode(&RecordV4::Template(template)).unwrap(),
            )
            .unwrap();
        db.flush().unwrap();
    }
    let store = reopen(dir.path());
    assert_eq!(
        store.schema_version().unwrap(),
        Some(gatehouse::store::SCHEMA_VERSION)
    );
    let Some(Record::Device(d)) = store.get(Kind::Device, Id(3)).unwrap() else {
        panic!("the device");
    };
    assert_eq!(d.host_keys, vec![key]);
    assert_eq!(
        (d.address.as_str(), d.port, d.meta.revision),
        ("10.0.0.5", 2222, 4)
    );
    assert_eq!(d.tags, vec!["web".to_string()]);
    assert!(d.ssh_options.is_empty() && d.via.is_none());
    let Some(Record::Template(t)) = store.get(Kind::Template, Id(9)).unwrap() else {
        panic!("the template");
    };
    assert_eq!((t.content.as_str(), t.meta.revision), ("echo hello", 2));
    assert!(t.interpreter.is_empty() && !t.pty);
    let revision = store
        .template_revision(Id(9), 2)
        .unwrap()
        .expect("revision 2");
    assert_eq!(revision.description, "says hello");
}
