//! The log files of the server and the clients. Every line is written
//! through [`Escaping`], so nothing a client or a remote machine sent can
//! forge a line (a newline in a login) or reach whoever reads the log with
//! a terminal (escape sequences): control bytes become `\xNN`.

use std::io::Write;

/// Logs go to daily files under the data directory, never to the terminal
/// the UI owns, and never into a data directory of another OS user (root's
/// log files in a service's directory would break the service).
pub fn init(
    data_dir: &std::path::Path,
    name: &str,
) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(meta) = std::fs::metadata(data_dir) {
        if meta.uid() != nix::unistd::Uid::current().as_raw() {
            return None;
        }
    }
    let dir = crate::paths::logs_in(data_dir);
    std::fs::create_dir_all(&dir).ok()?;
    let appender = tracing_appender::rolling::daily(dir, format!("{name}.log"));
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || Escaping(writer.clone()))
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some(guard)
}

/// Writes whole log records with their control bytes escaped; the record's
/// own final newline stays.
pub struct Escaping<W: Write>(pub W);

impl<W: Write> Write for Escaping<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let (body, end) = match buf.split_last() {
            Some((b'\n', body)) => (body, &b"\n"[..]),
            _ => (buf, &b""[..]),
        };
        let mut out = Vec::with_capacity(buf.len() + 16);
        let mut i = 0;
        while i < body.len() {
            let b = body[i];
            // C1 controls arrive as UTF-8: 0xC2 0x80..=0x9F.
            let c1 = b == 0xc2 && body.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n));
            if c1 {
                out.extend_from_slice(format!("\\xc2\\x{:02x}", body[i + 1]).as_bytes());
                i += 2;
                continue;
            }
            if (b < 0x20 && b != b'\t') || b == 0x7f {
                out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
            } else {
                out.push(b);
            }
            i += 1;
        }
        out.extend_from_slice(end);
        self.0.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_cannot_forge_a_line_or_carry_an_escape() {
        let mut out = Escaping(Vec::new());
        out.write_all("login=bob\nINFO forged \u{1b}]52;c;aGk=\u{7} \u{9b}2J ok\n".as_bytes())
            .unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            "login=bob\\x0aINFO forged \\x1b]52;c;aGk=\\x07 \\xc2\\x9b2J ok\n"
        );
    }
}
