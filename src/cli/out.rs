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

/// Writes to standard output; a closed reader ends the process (status 0),
/// another failure is said on standard error and ends it with status 1.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
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
