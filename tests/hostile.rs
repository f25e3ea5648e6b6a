//! A fixed corpus of hostile input, run through the real binary: huge files,
//! invalid UTF-8, control characters and terminal escape sequences in names,
//! values, configuration and remote output, and garbage on the socket. Each
//! gets a clear error (or is shown harmlessly) and changes nothing: the
//! records and the audit log are what they were. (The template and records
//! parsers are also fuzzed with proptest in `parser_properties.rs`.)

// Tests fail loudly: unwrap is how they say what broke.
#![allow(clippy::unwrap_used)]

mod common;

use common::DataDir;
use std::io::Write;

const BASE: &str = r#"
[[environment]]
name = "lab"
[[system]]
name = "box"
[[device]]
name = "here"
address = "127.0.0.1"
environment = "lab"
system = "box"
[[credential]]
name = "none"
username = "root"
[[template]]
name = "echo"
executor = "local"
content = '''printf 'before \033[2J\033]0;pwned\007\033[31m red \033[0m after\n'; echo [#WHAT#]'''
[[template.variable]]
name = "WHAT"
default = "ok"
[[task]]
name = "echo"
template = "echo"
environment = "lab"
system = "box"
devices = ["here"]
credential = "none"
"#;

/// What must not change: the records (export without its dated first line)
/// and the number of audit events.
fn state(d: &DataDir) -> (String, String) {
    let export = d
        .ok(&["export"])
        .lines()
        .skip(1)
        .collect::<Vec<_>>()
        .join("\n");
    // The chain intact, and the events that record a change (reads such
    // as this export are audited too, and are not changes).
    assert!(d.ok(&["audit", "verify"]).contains("chain intact"));
    let changes = d
        .ok(&["audit", "export"])
        .lines()
        .filter(|l| {
            !l.contains("\"action\":\"records.export\"")
                && !l.contains("\"action\":\"audit.export\"")
        })
        .map(|l| l.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    (export, changes)
}

fn no_escape(text: &str) -> bool {
    !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{9b}')
}

fn setup() -> DataDir {
    let d = DataDir::new();
    let file = d.write("base.toml", BASE);
    d.ok(&["import", file.to_str().unwrap()]);
    d
}

#[test]
fn hostile_records_files_are_refused_clearly_and_change_nothing() {
    let d = setup();
    let before = state(&d);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "huge.toml",
            {
                let mut v = b"[[environment]]\nname = \"".to_vec();
                v.extend(std::iter::repeat_n(b'a', 17 * 1024 * 1024));
                v.extend(b"\"\n");
                v
            },
            "input files are at most 16 MiB",
        ),
        (
            "latin1.toml",
            b"[[environment]]\nname = \"caf\xe9\"\n".to_vec(),
            "line 2: not UTF-8 text (invalid byte at offset 27)",
        ),
        (
            "escape-name.toml",
            b"[[environment]]\nname = \"evil\\u001b[2J\"\n".to_vec(),
            "must not hold the control character '\\u{1b}'",
        ),
        (
            "bell-description.toml",
            b"[[template]]\nname = \"t\"\nexecutor = \"local\"\ndescription = \"ring \\u0007 ring\"\ncontent = \"true\"\n".to_vec(),
            "field `description`: must not hold the control character '\\u{7}'",
        ),
        (
            "huge-content.toml",
            format!(
                "[[template]]\nname = \"big\"\nexecutor = \"local\"\ncontent = \"{}\"\n",
                "x".repeat(300 * 1024)
            )
            .into_bytes(),
            "field `content`: must be at most 262144 bytes",
        ),
        (
            "nul.toml",
            b"[[environment]]\nname = \"a\\u0000b\"\n".to_vec(),
            "must not hold the control character '\\0'",
        ),
        (
            "long-name.toml",
            format!("[[environment]]\nname = \"{}\"\n", "n".repeat(65)).into_bytes(),
            "must be at most 64 characters",
        ),
        (
            "deep.toml",
            format!("x = {}1{}\n", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            "line 1",
        ),
        (
            "not-toml.toml",
            b"\x00\x01\x02 garbage \xff".to_vec(),
            "not UTF-8 text",
        ),
        (
            "second-bad.toml",
            b"[[environment]]\nname = \"fine-one\"\n[[environment]]\nname = \" padded\"\n".to_vec(),
            "must not start or end with a blank",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = d.scratch.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        let err = d.fails(&["import", path.to_str().unwrap()]);
        assert!(
            err.contains(expected),
            "{name}: expected '{expected}' in:\n{}",
            &err[..err.len().min(2000)]
        );
        assert!(
            no_escape(&err),
            "{name}: the error carries a raw escape: {err:?}"
        );
        assert!(
            err.len() < 4096,
            "{name}: the error is {} bytes long",
            err.len()
        );
        assert_eq!(state(&d), before, "{name} changed something");
    }
}

#[test]
fn hostile_values_are_refused_naming_the_variable_and_never_echoed_raw() {
    let d = setup();
    let before_ops = d.ok(&["history", "--json"]);
    for value in [
        "a; rm -rf /",
        "$(id)",
        "x\u{1b}]0;pwned\u{7}",
        "`reboot`",
        "a\nb",
    ] {
        let err = d.fails(&["request", "echo", "--var", &format!("WHAT={value}")]);
        assert!(err.contains("variable WHAT"), "{value:?}: {err}");
        assert!(no_escape(&err), "{value:?}: {err:?}");
    }
    assert_eq!(
        d.ok(&["history", "--json"]),
        before_ops,
        "a refused request ran"
    );
}

#[test]
fn remote_output_never_reaches_the_terminal_raw() {
    let d = setup();
    let out = d.ok(&["request", "echo", "--wait"]);
    assert!(
        out.contains("before") && out.contains("red") && out.contains("after"),
        "{out}"
    );
    assert!(
        no_escape(&out),
        "request --wait printed raw escapes: {out:?}"
    );
    let id = d
        .ok(&["history", "--json"])
        .lines()
        .next()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["id"].as_u64())
        .unwrap();
    let logs = d.ok(&["logs", &id.to_string()]);
    assert!(logs.contains("before") && no_escape(&logs), "{logs:?}");
    // The store keeps what the device sent, byte for byte.
    let json = d.ok(&["history", "--json"]);
    assert!(no_escape(&json));
}

#[test]
fn a_hostile_configuration_is_named_not_obeyed() {
    let d = DataDir::new();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "bad-utf8.toml",
            b"data_dir = \"/tmp/\xff\"\n".to_vec(),
            "stream did not contain valid UTF-8",
        ),
        (
            "unknown.toml",
            b"[limits]\nparallelism = 4\nrm_rf = true\n".to_vec(),
            "unknown field `rm_rf`",
        ),
        (
            "zero.toml",
            b"[limits]\nparallelism = 0\n".to_vec(),
            "key `limits.parallelism` must be at least 1",
        ),
        (
            "escape-key.toml",
            b"[keys]\nquit = \"\\u001b\"\n".to_vec(),
            "key `keys.quit`",
        ),
        (
            "theme.toml",
            b"theme = \"/nonexistent/\\u001b[2J\"\n".to_vec(),
            "key `theme`",
        ),
    ];
    for (name, bytes, expected) in cases {
        let path = d.scratch.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let err = d.fails(&["config", "check", path.to_str().unwrap()]);
        assert!(err.contains(expected), "{name}: {err}");
        assert!(no_escape(&err), "{name}: {err:?}");
        // Every command refuses to run on it.
        let refused = d.fails(&["--config", path.to_str().unwrap(), "whoami"]);
        assert!(refused.contains(name), "{name}: {refused}");
    }
}

#[test]
fn garbage_on_the_socket_is_answered_and_the_server_stays_up() {
    use std::io::Read;
    let d = setup();
    let socket = d.path().join("gatehouse.sock");
    let frames: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        vec![0xff; 64],
        {
            // A valid magic and version, then a body that decodes to nothing.
            let mut body = b"GATEHSE\0".to_vec();
            body.extend(gatehouse::server::wire::PROTOCOL_VERSION.to_be_bytes());
            body.extend([0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff]);
            let mut f = (body.len() as u32).to_be_bytes().to_vec();
            f.extend(body);
            f
        },
        // A length that promises far more than the limit.
        vec![0x7f, 0xff, 0xff, 0xff, 1, 2, 3],
    ];
    for frame in frames {
        let mut stream = std::os::unix::net::UnixStream::connect(&socket).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        stream.write_all(&frame).unwrap();
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        assert!(answer.len() < 4096);
        assert!(
            d.ok(&["whoami"]).contains("root"),
            "the server went down after {frame:?}"
        );
    }
    assert!(d.ok(&["audit", "verify"]).contains("chain intact"));
}
