//! The `local` executor: the script runs on the Gatehouse host itself.

use super::output::OutputTx;
use super::RunError;
use crate::domain::Stream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Runs a script with `/bin/sh`; returns its exit status. The command line
/// is fixed ([`super::SCRIPT_COMMAND`]) and the script goes on stdin, so
/// nothing of it (secrets included) is in the process list.
pub async fn run_script(script: &str, out: &OutputTx) -> Result<i32, RunError> {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(super::SCRIPT_SHELL_CODE)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| RunError::Invalid(format!("cannot start /bin/sh: {e}")))?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| RunError::Invalid("no stdin".into()))?;
    let script = script.as_bytes().to_vec();
    // Written on its own task: a script that prints much before reading
    // all of itself must not wait on us.
    let feeder = tokio::spawn(async move {
        let _ = stdin.write_all(&script).await;
        let _ = stdin.shutdown().await;
    });
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| RunError::Invalid("no stdout".into()))?;
    let mut stderr = child
        .stderr
        .take()
        .ok_or_else(|| RunError::Invalid("no stderr".into()))?;
    let (mut out_done, mut err_done) = (false, false);
    let mut out_buf = vec![0u8; 16 * 1024];
    let mut err_buf = vec![0u8; 16 * 1024];
    while !(out_done && err_done) {
        tokio::select! {
            n = stdout.read(&mut out_buf), if !out_done => match n {
                Ok(0) | Err(_) => out_done = true,
                Ok(n) => out.send(Stream::Stdout, out_buf[..n].to_vec()).await,
            },
            n = stderr.read(&mut err_buf), if !err_done => match n {
                Ok(0) | Err(_) => err_done = true,
                Ok(n) => out.send(Stream::Stderr, err_buf[..n].to_vec()).await,
            },
        }
    }
    feeder.abort();
    let status = child
        .wait()
        .await
        .map_err(|e| RunError::Failed(format!("cannot wait for the script: {e}")))?;
    match status.code() {
        Some(code) => Ok(code),
        None => Err(RunError::Failed("the script was killed by a signal".into())),
    }
}
