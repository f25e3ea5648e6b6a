//! The framed wire protocol between clients and the server: a 4-byte
//! big-endian length, then the body. The first frame each way is a hello
//! that starts with a magic and the protocol version in fixed bytes, so a
//! client of another version gets a clear message instead of garbage.

use crate::engine::{Command, EngineError, Event, Response};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Changes whenever a frame's layout changes.
pub const PROTOCOL_VERSION: u32 = 11;
const MAGIC: &[u8; 8] = b"GATEHSE\0";
/// No frame may be larger: protects both sides from a bad length.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;
/// A hello is read before anything is known about the peer: it stays small.
pub const MAX_HELLO: usize = 4 * 1024;
/// A frame's body is read as it arrives, never allocated whole from its
/// announced length: a peer that announces much and sends little costs little.
const READ_STEP: usize = 64 * 1024;

/// A request on the wire, with an id to match its reply.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClientFrame {
    pub id: u64,
    pub command: Command,
}

/// What the server sends after the hello.
/// On the wire by variant index: a new variant goes last and bumps
/// PROTOCOL_VERSION (tests/golden.rs).
#[derive(Debug, Serialize, Deserialize)]
pub enum ServerFrame {
    Reply {
        id: u64,
        result: Result<Response, EngineError>,
    },
    Event(Event),
    /// Part of a streamed answer (a backup), in order, before its `Reply`.
    Data {
        id: u64,
        bytes: Vec<u8>,
    },
}

/// The client's first frame, after the magic and version.
#[derive(Debug, Serialize, Deserialize)]
pub struct Hello {
    /// Act as this Gatehouse user (allowed only to the server's own OS account).
    pub as_login: Option<String>,
}

/// The server's answer to the hello: who the caller is, or why not.
#[derive(Debug, Serialize, Deserialize)]
pub struct Welcome {
    pub result: Result<String, String>,
    /// What the caller must be told at once (their second factor was reset…).
    pub notices: Vec<String>,
}

impl Welcome {
    /// A refusal.
    pub fn refused(message: impl Into<String>) -> Welcome {
        Welcome {
            result: Err(message.into()),
            notices: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes is larger than the limit")]
    TooLarge(usize),
    #[error("cannot decode a frame: {0}")]
    Decode(String),
    #[error("cannot encode a frame: {0}")]
    Encode(String),
    #[error("the peer is not a Gatehouse program")]
    NotGatehouse,
    #[error("the peer speaks protocol version {theirs}, this program {ours}: run the same Gatehouse version on both sides")]
    Version { theirs: u32, ours: u32 },
}

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

async fn read_raw<R: AsyncRead + Unpin>(
    r: &mut R,
    limit: usize,
) -> Result<Option<Vec<u8>>, WireError> {
    let len = match r.read_u32().await {
        Ok(n) => n as usize,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if len > limit {
        return Err(WireError::TooLarge(len));
    }
    let mut body = Vec::with_capacity(len.min(READ_STEP));
    let got = r.take(len as u64).read_to_end(&mut body).await?;
    if got < len {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(Some(body))
}

async fn write_raw<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> Result<(), WireError> {
    if body.len() > MAX_FRAME {
        return Err(WireError::TooLarge(body.len()));
    }
    w.write_u32(body.len() as u32).await?;
    w.write_all(body).await?;
    w.flush().await?;
    Ok(())
}

/// Encodes a frame body.
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    bincode::serde::encode_to_vec(value, config()).map_err(|e| WireError::Encode(e.to_string()))
}

/// Reads one frame; `None` at a clean end of the stream.
pub async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> Result<Option<T>, WireError> {
    match read_raw(r, MAX_FRAME).await? {
        None => Ok(None),
        Some(body) => bincode::serde::decode_from_slice(&body, config())
            .map(|(v, _)| Some(v))
            .map_err(|e| WireError::Decode(e.to_string())),
    }
}

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    value: &T,
) -> Result<(), WireError> {
    write_raw(w, &encode(value)?).await
}

/// Writes an already encoded frame body.
pub async fn write_encoded<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> Result<(), WireError> {
    write_raw(w, body).await
}

fn hello_body<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    let mut body = MAGIC.to_vec();
    body.extend(PROTOCOL_VERSION.to_be_bytes());
    body.extend(encode(value)?);
    if body.len() > MAX_HELLO {
        return Err(WireError::TooLarge(body.len()));
    }
    Ok(body)
}

/// Writes a hello (either side): magic, version, then the body.
pub async fn write_hello<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    value: &T,
) -> Result<(), WireError> {
    write_raw(w, &hello_body(value)?).await
}

/// A whole hello frame, length included, for a single non-blocking write.
pub fn encode_hello<T: Serialize>(value: &T) -> Result<Vec<u8>, WireError> {
    let body = hello_body(value)?;
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend(body);
    Ok(frame)
}

/// Reads a hello (at most [`MAX_HELLO`] bytes), checking the magic and the
/// version before the body.
pub async fn read_hello<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> Result<T, WireError> {
    let body = read_raw(r, MAX_HELLO)
        .await?
        .ok_or(WireError::NotGatehouse)?;
    if body.len() < 12 || &body[..8] != MAGIC {
        return Err(WireError::NotGatehouse);
    }
    let theirs = u32::from_be_bytes([body[8], body[9], body[10], body[11]]);
    if theirs != PROTOCOL_VERSION {
        return Err(WireError::Version {
            theirs,
            ours: PROTOCOL_VERSION,
        });
    }
    bincode::serde::decode_from_slice(&body[12..], config())
        .map(|(v, _)| v)
        .map_err(|e| WireError::Decode(e.to_string()))
}
