//! Standard output for the verbs. A reader that went away (`gatehouse
//! history | head -3`) ends the command quietly with status 0, as standard
//! tools do, instead of a panic.

use std::io::Write;

/// Ends the process quietly when `e` says the reader went away.
pub fn exit_if_reader_gone(e: &std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
}

pub use crate::text::safe;

/// Writes to standard output; a closed reader ends the process (status 0),
/// another failure is said on standard error and ends it with status 1.
pub fn write(args: std::fmt::Arguments<'_>) {
    let text = std::fmt::format(args);
    let mut out = std::io::stdout().lock();
    if let Err(e) = out
        .write_all(safe(&text).as_bytes())
        .and_then(|()| out.flush())
    {
        exit_if_reader_gone(&e);
        eprintln!("gatehouse: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `println!` for verbs: see [`write`].
macro_rules! outln {
    () => {
        $crate::cli::out::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` for verbs: see [`write`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::write(format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn nothing_that_drives_a_terminal_reaches_standard_output() {
        let json = serde_json::json!({ "c": "a\u{1b}]52;c;x\u{7}\u{9b}2J\u{202e}b" }).to_string();
        let shown = super::safe(&json);
        assert_eq!(shown, r#"{"c":"a\u001b]52;c;x\u0007\u009b2J\u202eb"}"#);
        // Still the same JSON.
        let back: serde_json::Value = serde_json::from_str(&shown).unwrap();
        assert_eq!(back["c"], "a\u{1b}]52;c;x\u{7}\u{9b}2J\u{202e}b");
        assert_eq!(super::safe("plain\tline\n"), "plain\tline\n");
    }
}

/// A CSV writer on standard output whose cells cannot turn into
/// spreadsheet formulas: a cell starting with `=`, `+`, `-`, `@`, a tab or
/// a carriage return gets a leading `'` (the OWASP advice against CSV
/// injection), and other control characters are made printable.
pub struct Csv<W: Write> {
    writer: csv::Writer<W>,
}

impl<W: Write> Csv<W> {
    pub fn new(out: W, header: &[&str]) -> std::io::Result<Csv<W>> {
        let mut writer = csv::Writer::from_writer(out);
        writer.write_record(header).map_err(std::io::Error::other)?;
        Ok(Csv { writer })
    }

    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) -> std::io::Result<()> {
        let cells: Vec<String> = cells.iter().map(|c| csv_cell(c.as_ref())).collect();
        self.writer
            .write_record(&cells)
            .map_err(std::io::Error::other)
    }

    pub fn finish(mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

/// One cell as written: printable (line breaks kept, inside quotes),
/// and never a formula.
pub fn csv_cell(text: &str) -> String {
    let text = crate::text::printable_lines(text);
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text
    }
}

#[cfg(test)]
mod csv_tests {
    use super::*;

    #[test]
    fn a_cell_that_would_be_a_formula_is_quoted_and_commas_survive() {
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\")"),
            "'=HYPERLINK(\"http://x\")"
        );
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("plain"), "plain");
        let mut buf = Vec::new();
        let mut csv = Csv::new(&mut buf, &["a", "b"]).unwrap();
        csv.row(&["x, y", "say \"hi\"\nthere"]).unwrap();
        csv.finish().unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text, "a,b\n\"x, y\",\"say \"\"hi\"\"\nthere\"\n");
    }
}
