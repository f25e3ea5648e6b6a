//! The store's backend contract, run against both backends: sled in a
//! temporary directory and a real PostgreSQL (initdb in a temporary
//! directory, on a Unix socket). Whatever the store above them relies on
//! is asserted here once, for each.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use gatehouse::store::kv::{Backend, Range, Write};
use std::sync::Arc;

/// Opens the same store again (a second handle where the backend allows
/// several at once, as PostgreSQL does for several servers).
trait Fixture {
    fn open(&self) -> Arc<dyn Backend>;
    /// Whether two handles may be open at once.
    fn shared(&self) -> bool;
}

struct SledStore(tempfile::TempDir);

impl Fixture for SledStore {
    fn open(&self) -> Arc<dyn Backend> {
        let db = sled::open(self.0.path().join("kv")).unwrap();
        Arc::new(gatehouse::store::kv::Sled::new(db))
    }
    fn shared(&self) -> bool {
        false
    }
}

struct PgStore {
    url: String,
}

impl Fixture for PgStore {
    fn open(&self) -> Arc<dyn Backend> {
        Arc::new(gatehouse::store::kv::Postgres::connect(&self.url).unwrap())
    }
    fn shared(&self) -> bool {
        true
    }
}

fn key(n: u64) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

fn reads_and_writes_in_key_order(f: &dyn Fixture) {
    let kv = f.open();
    assert_eq!(kv.get("t", &key(1)).unwrap(), None);
    // Written out of order, in two trees, in one batch.
    let mut writes: Vec<Write> = [5u64, 1, 300, 2, 256]
        .iter()
        .map(|n| Write::put("t", key(*n), format!("v{n}")))
        .collect();
    writes.push(Write::put("other", key(1), "o1"));
    kv.apply(writes).unwrap();
    assert_eq!(kv.get("t", &key(300)).unwrap(), Some(b"v300".to_vec()));
    assert_eq!(kv.get("other", &key(1)).unwrap(), Some(b"o1".to_vec()));
    // Several at once, in the asked order, a missing one as none.
    assert_eq!(
        kv.get_many("t", &[key(300), key(999), key(1)]).unwrap(),
        vec![Some(b"v300".to_vec()), None, Some(b"v1".to_vec())]
    );
    let keys = |r: Vec<(Vec<u8>, Vec<u8>)>| -> Vec<u64> {
        r.into_iter()
            .map(|(k, _)| u64::from_be_bytes(k.try_into().unwrap()))
            .collect()
    };
    // Big-endian keys: byte order is id order (256 after 5, not before).
    assert_eq!(
        keys(kv.range("t", &Range::all()).unwrap()),
        [1, 2, 5, 256, 300]
    );
    assert_eq!(
        keys(kv.range("t", &Range::all().reversed().limit(2)).unwrap()),
        [300, 256]
    );
    assert_eq!(
        keys(kv.range("t", &Range::from(&key(3))).unwrap()),
        [5, 256, 300]
    );
    let bounded = Range {
        from: key(2),
        to: Some(key(256)),
        ..Range::default()
    };
    assert_eq!(keys(kv.range("t", &bounded).unwrap()), [2, 5]);
    // A prefix: the first seven bytes of 256 and 300 are the same (0…01).
    let prefix = &key(256)[..7];
    assert_eq!(
        keys(kv.range("t", &Range::prefix(prefix)).unwrap()),
        [256, 300]
    );
    // Overwrite and delete in one batch.
    kv.apply(vec![
        Write::put("t", key(1), "changed"),
        Write::delete("t", key(2)),
    ])
    .unwrap();
    assert_eq!(kv.get("t", &key(1)).unwrap(), Some(b"changed".to_vec()));
    assert_eq!(kv.get("t", &key(2)).unwrap(), None);
    let mut names = kv.tree_names().unwrap();
    names.sort();
    assert_eq!(names, ["other", "t"]);
    kv.drop_tree("other").unwrap();
    assert_eq!(kv.tree_names().unwrap(), ["t"]);
    assert_eq!(kv.get("other", &key(1)).unwrap(), None);
}

fn what_was_applied_is_there_after_reopening(f: &dyn Fixture) {
    {
        let kv = f.open();
        kv.apply(vec![Write::put("durable", key(7), vec![0u8, 255, 1])])
            .unwrap();
    }
    let kv = f.open();
    assert_eq!(kv.get("durable", &key(7)).unwrap(), Some(vec![0u8, 255, 1]));
}

fn ids_are_unique_and_increase(f: &dyn Fixture) {
    let a = f.open();
    let b = if f.shared() { f.open() } else { a.clone() };
    let mut seen = std::collections::BTreeSet::new();
    let mut last = 0;
    for i in 0..50 {
        let id = if i % 2 == 0 { a.next_id() } else { b.next_id() }.unwrap();
        assert!(id > last, "{id} after {last}");
        assert!(id > 0);
        assert!(seen.insert(id));
        last = id;
    }
}

/// An appended entry: its number and the hash of the one before, chained.
fn link(prev: Option<&[u8]>, n: u64) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(prev.unwrap_or(&[]));
    h.update(n.to_be_bytes());
    h.finalize().to_vec()
}

/// Three handles on one store: three where the backend allows several
/// at once, else one shared by three threads.
fn three_handles(f: &dyn Fixture) -> Vec<Arc<dyn Backend>> {
    if f.shared() {
        vec![f.open(), f.open(), f.open()]
    } else {
        let one = f.open();
        vec![one.clone(), one.clone(), one]
    }
}

fn appends_from_several_handles_chain_without_a_gap(f: &dyn Fixture) {
    let handles = three_handles(f);
    let threads: Vec<_> = handles
        .into_iter()
        .map(|kv| {
            std::thread::spawn(move || {
                for _ in 0..30 {
                    kv.append_locked("chain", &mut |last| {
                        let (n, prev) = match &last {
                            Some((k, v)) => (
                                u64::from_be_bytes(k.clone().try_into().unwrap()),
                                Some(v.as_slice()),
                            ),
                            None => (0, None),
                        };
                        Ok(vec![
                            Write::put("chain", key(n + 1), link(prev, n + 1)),
                            // Something else changes with it, in the same batch.
                            Write::put("heads", b"chain".to_vec(), key(n + 1)),
                        ])
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Read back through a fresh handle (the threads' handles are gone).
    let kv = f.open();
    let chain = kv.range("chain", &Range::all()).unwrap();
    assert_eq!(chain.len(), 90, "every append landed once");
    let mut prev: Option<Vec<u8>> = None;
    for (i, (k, v)) in chain.iter().enumerate() {
        let n = u64::from_be_bytes(k.clone().try_into().unwrap());
        assert_eq!(n, i as u64 + 1, "no gap, no repeat");
        assert_eq!(*v, link(prev.as_deref(), n), "entry {n} links to {}", n - 1);
        prev = Some(v.clone());
    }
    assert_eq!(kv.get("heads", b"chain").unwrap(), Some(key(90)));
}

fn a_refused_append_writes_nothing(f: &dyn Fixture) {
    let kv = f.open();
    kv.apply(vec![Write::put("guarded", key(1), "one")])
        .unwrap();
    let refused = kv.append_locked("guarded", &mut |last| {
        assert_eq!(last.unwrap().0, key(1));
        Err(gatehouse::store::StoreError::Encode("no".into()))
    });
    assert!(refused.is_err());
    // Positive control: the lock is free again and an append goes through.
    kv.append_locked("guarded", &mut |_| {
        Ok(vec![Write::put("guarded", key(2), "two")])
    })
    .unwrap();
    assert_eq!(kv.range("guarded", &Range::all()).unwrap().len(), 2);
}

fn a_locked_update_is_a_compare_and_set_across_handles(f: &dyn Fixture) {
    let handles = three_handles(f);
    let threads: Vec<_> = handles
        .into_iter()
        .map(|kv| {
            std::thread::spawn(move || {
                for _ in 0..30 {
                    kv.update_locked("counters", b"n", &mut |now| {
                        let n = now
                            .map(|(_, v)| u64::from_be_bytes(v.try_into().unwrap()))
                            .unwrap_or(0);
                        Ok(vec![Write::put("counters", b"n".to_vec(), key(n + 1))])
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // Every increment read the one before it: none was lost.
    assert_eq!(f.open().get("counters", b"n").unwrap(), Some(key(90)));
}

fn a_batch_applies_its_writes_in_order(f: &dyn Fixture) {
    let kv = f.open();
    kv.apply(vec![
        Write::put("o", b"a".to_vec(), "1"),
        Write::put("o", b"a".to_vec(), "2"),
        Write::delete("o", b"a".to_vec()),
        Write::put("o", b"b".to_vec(), "1"),
        Write::put("o", b"b".to_vec(), "3"),
        Write::delete("o", b"c".to_vec()),
        Write::put("o", b"c".to_vec(), "5"),
    ])
    .unwrap();
    assert_eq!(kv.get("o", b"a").unwrap(), None);
    assert_eq!(kv.get("o", b"b").unwrap(), Some(b"3".to_vec()));
    assert_eq!(kv.get("o", b"c").unwrap(), Some(b"5".to_vec()));
    // A large batch, over several statements where the backend splits it.
    let many: Vec<Write> = (0..1000u64)
        .map(|n| Write::put("many", key(n), n.to_string()))
        .collect();
    kv.apply(many).unwrap();
    assert_eq!(kv.range("many", &Range::all()).unwrap().len(), 1000);
    assert_eq!(kv.get("many", &key(999)).unwrap(), Some(b"999".to_vec()));
}

/// A scan reads a long tree a page at a time (its pages growing): every
/// entry once, in key order both ways, within a range's bounds, and a
/// visitor that stops early is not called again.
fn a_scan_visits_every_entry_once_in_order_across_pages(f: &dyn Fixture) {
    use gatehouse::store::kv::scan;
    let kv = f.open();
    let n = 20_000u64;
    let all: Vec<Write> = (0..n).map(|i| Write::put("s", key(i), "")).collect();
    kv.apply(all).unwrap();
    kv.apply(vec![Write::put("s+", key(0), "")]).unwrap();
    let collect = |range: &Range| {
        let mut seen = Vec::new();
        scan(&*kv, "s", range, |k, _| {
            seen.push(u64::from_be_bytes(k.try_into().unwrap()));
            Ok(true)
        })
        .unwrap();
        seen
    };
    assert_eq!(collect(&Range::all()), (0..n).collect::<Vec<_>>());
    let backward = Range {
        reverse: true,
        ..Range::all()
    };
    assert_eq!(collect(&backward), (0..n).rev().collect::<Vec<_>>());
    let bounded = Range {
        from: key(700),
        to: Some(key(15_000)),
        reverse: true,
        limit: None,
    };
    assert_eq!(collect(&bounded), (700..15_000).rev().collect::<Vec<_>>());
    let mut calls = 0;
    scan(&*kv, "s", &Range::all(), |_, _| {
        calls += 1;
        Ok(calls < 1_500)
    })
    .unwrap();
    assert_eq!(calls, 1_500);
}

fn every_case(fresh: &dyn Fn() -> Box<dyn Fixture>) {
    a_scan_visits_every_entry_once_in_order_across_pages(&*fresh());
    a_batch_applies_its_writes_in_order(&*fresh());
    a_locked_update_is_a_compare_and_set_across_handles(&*fresh());
    reads_and_writes_in_key_order(&*fresh());
    what_was_applied_is_there_after_reopening(&*fresh());
    ids_are_unique_and_increase(&*fresh());
    appends_from_several_handles_chain_without_a_gap(&*fresh());
    a_refused_append_writes_nothing(&*fresh());
}

#[test]
fn the_sled_backend_keeps_the_contract() {
    every_case(&|| Box::new(SledStore(tempfile::tempdir().unwrap())));
}

#[test]
fn the_postgres_backend_keeps_the_contract() {
    let pg = common::postgres::Postgres::start();
    every_case(&|| {
        Box::new(PgStore {
            url: pg.database().1,
        })
    });
}

#[test]
fn a_postgres_database_of_a_newer_layout_is_refused_and_a_url_never_shows_its_password() {
    let pg = common::postgres::Postgres::start();
    let (name, url) = pg.database();
    let kv =
        gatehouse::store::kv::Postgres::connect(&format!("{url} password=hunter2-secret")).unwrap();
    let shown = kv.describe();
    assert!(shown.contains(&name), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    drop(kv);
    pg.psql(
        &name,
        "UPDATE gatehouse_meta SET value = '99' WHERE name = 'layout'",
    );
    let Err(refused) = gatehouse::store::kv::Postgres::connect(&url) else {
        panic!("a newer layout was opened")
    };
    let said = refused.to_string();
    assert!(
        said.contains("99") && said.contains("upgrade Gatehouse"),
        "{said}"
    );
    // An unreachable database is a named failure, not a hang.
    let Err(gone) = gatehouse::store::kv::Postgres::connect("host=/nonexistent/gh user=x dbname=y")
    else {
        panic!("connected to nothing")
    };
    assert!(gone.to_string().contains("PostgreSQL"), "{gone}");
}

fn ids_skip_past_a_copied_stores(f: &dyn Fixture) {
    let kv = f.open();
    let first = kv.next_id().unwrap();
    kv.ids_above(5000).unwrap();
    let next = kv.next_id().unwrap();
    assert!(next > 5000, "{next}");
    assert!(next > first);
    // Never backwards.
    kv.ids_above(10).unwrap();
    assert!(kv.next_id().unwrap() > next);
}

#[test]
fn ids_skip_past_a_copied_stores_on_both_backends() {
    ids_skip_past_a_copied_stores(&SledStore(tempfile::tempdir().unwrap()));
    let pg = common::postgres::Postgres::start();
    ids_skip_past_a_copied_stores(&PgStore {
        url: pg.database().1,
    });
}

#[test]
fn a_url_that_asks_for_tls_gets_it_with_the_named_ca_and_nothing_else() {
    let tls = common::postgres::Postgres::start_tls();
    let (name, _) = tls.pg.database();
    let url = |ca: &str| {
        format!(
            "host=localhost hostaddr=127.0.0.1 port={} user=gatehouse dbname={name} sslmode=require{ca}",
            tls.port
        )
    };
    // Without the CA to check the database's certificate against: refused, saying what to add.
    let Err(unnamed) = gatehouse::store::kv::Postgres::connect(&url("")) else {
        panic!("TLS without a CA to trust")
    };
    assert!(
        unnamed.to_string().contains("sslrootcert=FILE"),
        "{unnamed}"
    );
    // Another CA: the certificate is not trusted.
    let other = tempfile::tempdir().unwrap();
    let made = std::process::Command::new("openssl")
        .current_dir(other.path())
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "k",
            "-out",
            "other.pem",
            "-days",
            "1",
            "-subj",
            "/CN=someone-else",
        ])
        .output()
        .unwrap();
    assert!(made.status.success());
    let Err(untrusted) = gatehouse::store::kv::Postgres::connect(&url(&format!(
        " sslrootcert={}",
        other.path().join("other.pem").display()
    ))) else {
        panic!("a certificate from another CA was trusted")
    };
    assert!(untrusted.to_string().contains("PostgreSQL"), "{untrusted}");
    // The right CA: it works, over TLS.
    let kv = gatehouse::store::kv::Postgres::connect(&url(&format!(
        " sslrootcert={}",
        tls.ca.display()
    )))
    .unwrap();
    kv.apply(vec![Write::put("t", key(1), "over tls")]).unwrap();
    assert_eq!(kv.get("t", &key(1)).unwrap(), Some(b"over tls".to_vec()));
    let encrypted = tls.pg.psql(
        &name,
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE s.ssl AND a.datname = current_database()",
    );
    assert!(encrypted.trim().parse::<u32>().unwrap() >= 1, "{encrypted}");
    // Positive control: psql's own connection (the Unix socket) is not TLS.
    let plain = tls.pg.psql(
        &name,
        "SELECT count(*) FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND NOT ssl",
    );
    assert_eq!(plain.trim(), "1");
}
