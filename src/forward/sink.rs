//! The connections events are written to: a UDP or TCP socket to a syslog
//! collector, or an append-only file. Every write has a deadline, so a
//! collector that hangs costs a retry, never a stuck forwarder.

use super::{syslog, Sink, Transport};
use crate::store::AuditEvent;
use std::io;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) struct Connection {
    kind: Kind,
    facility: u8,
}

enum Kind {
    Udp(tokio::net::UdpSocket),
    Tcp(tokio::net::TcpStream, Transport),
    File(std::fs::File),
}

impl Connection {
    pub async fn open(sink: &Sink) -> io::Result<Connection> {
        match sink {
            Sink::Syslog {
                transport,
                address,
                facility,
            } => {
                let addr = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host(address))
                    .await
                    .map_err(|_| timed_out("resolving the collector's address"))??
                    .next()
                    .ok_or_else(|| io::Error::other(format!("{address} resolves to nothing")))?;
                let kind = match transport {
                    Transport::Udp => {
                        let local = if addr.is_ipv4() {
                            "0.0.0.0:0"
                        } else {
                            "[::]:0"
                        };
                        let socket = tokio::net::UdpSocket::bind(local).await?;
                        socket.connect(addr).await?;
                        Kind::Udp(socket)
                    }
                    Transport::Tcp | Transport::TcpOctetCounting => {
                        let stream = tokio::time::timeout(
                            CONNECT_TIMEOUT,
                            tokio::net::TcpStream::connect(addr),
                        )
                        .await
                        .map_err(|_| timed_out("connecting to the collector"))??;
                        stream.set_nodelay(true)?;
                        Kind::Tcp(stream, *transport)
                    }
                };
                Ok(Connection {
                    kind,
                    facility: *facility,
                })
            }
            Sink::JsonLines { file } => {
                use std::os::unix::fs::OpenOptionsExt;
                // Never through a link planted after the start-up check.
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(file)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
                Ok(Connection {
                    kind: Kind::File(file),
                    facility: 0,
                })
            }
        }
    }

    /// Sends events in order; an error means none of them may count as sent.
    pub async fn send(&mut self, events: &[AuditEvent], hostname: &str) -> io::Result<()> {
        let pid = std::process::id();
        match &mut self.kind {
            Kind::Udp(socket) => {
                for event in events {
                    let message = syslog::format(event, self.facility, hostname, pid);
                    tokio::time::timeout(WRITE_TIMEOUT, socket.send(message.as_bytes()))
                        .await
                        .map_err(|_| timed_out("sending to the collector"))??;
                }
                Ok(())
            }
            Kind::Tcp(stream, transport) => {
                // A collector that went away has sent its FIN: notice it
                // before writing into a socket nobody reads any more.
                let mut probe = [0u8; 64];
                match stream.try_read(&mut probe) {
                    Ok(0) => {
                        return Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "the collector closed the connection",
                        ))
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                let mut buffer = Vec::new();
                for event in events {
                    let message = syslog::format(event, self.facility, hostname, pid);
                    match transport {
                        Transport::TcpOctetCounting => {
                            buffer.extend(format!("{} ", message.len()).as_bytes());
                            buffer.extend(message.as_bytes());
                        }
                        _ => {
                            buffer.extend(message.as_bytes());
                            buffer.push(b'\n');
                        }
                    }
                }
                tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&buffer))
                    .await
                    .map_err(|_| timed_out("sending to the collector"))??;
                Ok(())
            }
            Kind::File(file) => {
                let mut buffer = String::new();
                for event in events {
                    buffer.push_str(&event.to_json().to_string());
                    buffer.push('\n');
                }
                let file = file.try_clone()?;
                tokio::task::spawn_blocking(move || {
                    use std::io::Write;
                    let mut file = file;
                    file.write_all(buffer.as_bytes())?;
                    file.sync_data()
                })
                .await
                .map_err(io::Error::other)?
            }
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("timed out {what}"))
}
