//! The sshd test harness works, and russh reads the host key it offers.

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::sshd::{fingerprint, Sshd, TEST_USER};
use gatehouse::domain::HostKey;
use std::process::Command;
use std::time::Duration;

#[test]
fn the_harness_sshd_lets_the_test_user_in_with_the_generated_key() {
    let sshd = Sshd::start("");
    let out = Command::new("ssh")
        .args(["-i"])
        .arg(sshd.client_key())
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-p",
            &sshd.port.to_string(),
            &format!("{TEST_USER}@{}", sshd.address),
            "echo harness-ok; id -un",
        ])
        .output()
        .expect("ssh client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ssh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("harness-ok"), "{stdout}");
    assert!(stdout.contains(TEST_USER), "{stdout}");
}

#[tokio::test]
async fn russh_reads_every_host_key_the_sshd_offers() {
    let keys = tempfile::tempdir().unwrap();
    let rsa = common::sshd::keygen(keys.path(), "host_rsa", "rsa", "", None);
    let ecdsa = common::sshd::keygen(keys.path(), "host_ecdsa", "ecdsa", "", None);
    let sshd = Sshd::start(&format!(
        "HostKey {}\nHostKey {}",
        rsa.display(),
        ecdsa.display()
    ));
    let offered = gatehouse::exec::scan_address(&sshd.address, sshd.port, Duration::from_secs(10))
        .await
        .expect("scan");
    let expected: Vec<String> = [
        sshd.host_pub(),
        rsa.with_extension("pub"),
        ecdsa.with_extension("pub"),
    ]
    .iter()
    .map(|p| fingerprint(p))
    .collect();
    let got: Vec<String> = offered.iter().map(|k| k.fingerprint()).collect();
    assert_eq!(got.len(), 3, "{got:?}");
    for e in &expected {
        assert!(got.contains(e), "{e} not among {got:?}");
    }
    let pinned = HostKey::parse(&sshd.host_key_line()).expect("parse .pub line");
    assert!(offered.contains(&pinned));
}

#[tokio::test]
async fn scanning_a_closed_port_fails_with_the_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = gatehouse::exec::scan_address("127.0.0.1", port, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}
