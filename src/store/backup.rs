//! Backups: every tree of the store, copied while commits wait, to a file
//! that `restore` loads into an empty data directory. Secrets stay sealed;
//! the key file is not in the backup.
//!
//! Operation output, kept in files since schema version 3, goes in as a
//! section named `output` laid out as the sled tree of that name was before
//! (operation id and sequence number as key, the encoded chunk as value), so
//! a backup from before version 3 restores too.

use super::{output, Store, StoreError, StoreResult};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

const MAGIC: &[u8] = b"GATEHOUSE-BACKUP\x00v1\x00";
/// The section holding the session recordings (files, not a tree).
const RECORDINGS: &str = "~session-recordings";

/// A recording's file name: `ID.cast` or `ID.input.cast`, nothing else.
fn recording_name(name: &str) -> bool {
    let id = name
        .strip_suffix(".input.cast")
        .or_else(|| name.strip_suffix(".cast"));
    id.is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
}

/// Writes one recording of a backup back (0600, in a 0700 directory); a
/// name that is not a recording's is refused, never written elsewhere.
fn restore_recording(dir: &Path, name: &[u8], bytes: &[u8]) -> StoreResult<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let name = std::str::from_utf8(name)
        .ok()
        .filter(|n| recording_name(n))
        .ok_or_else(|| StoreError::Corrupt {
            tree: RECORDINGS.into(),
            message: "a recording's name is not ID.cast".into(),
        })?;
    let sessions = dir.join("sessions");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&sessions)
        .map_err(io(&sessions))?;
    let path = sessions.join(name);
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(io(&path))?;
    file.write_all(bytes).map_err(io(&path))
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_bytes(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(&(bytes.len() as u64).to_be_bytes())?;
    w.write_all(bytes)
}

fn read_bytes(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 8];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u64::from_be_bytes(len);
    if len > 1 << 32 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "a value larger than 4 GiB",
        ));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// What a backup holds.
#[derive(Debug, Default, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct BackupSummary {
    pub trees: u64,
    pub entries: u64,
    pub bytes: u64,
}

impl Store {
    /// Writes every tree to `sink` as a backup stream. Commits wait
    /// meanwhile, so records and the audit chain are copied at one point in
    /// their history. The caller decides where it goes (the client that
    /// asked writes the file, with its own permissions).
    pub fn backup_to(&self, sink: impl Write) -> StoreResult<BackupSummary> {
        let _gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        self.kv.flush()?;
        let tmp = Path::new("(the backup stream)");
        let mut w = BufWriter::with_capacity(256 * 1024, sink);
        let mut summary = BackupSummary::default();
        w.write_all(MAGIC).map_err(io(tmp))?;
        let all = super::kv::Range::all();
        for name in self.kv.tree_names()? {
            if name == super::OUTPUT_TREE
                || name == output::CHUNKS_TREE
                || name == super::recording::LINES_TREE
            {
                continue; // the output and recordings sections below hold them
            }
            // Counted, then written: a tree that changes in between (only
            // progress writes can, commits wait) is refused, not half-copied.
            let mut count = 0u64;
            super::kv::scan(&*self.kv, &name, &all, |_, _| {
                count += 1;
                Ok(true)
            })?;
            write_bytes(&mut w, name.as_bytes()).map_err(io(tmp))?;
            w.write_all(&count.to_be_bytes()).map_err(io(tmp))?;
            let mut written = 0u64;
            super::kv::scan(&*self.kv, &name, &all, |k, v| {
                write_bytes(&mut w, k).map_err(io(tmp))?;
                write_bytes(&mut w, v).map_err(io(tmp))?;
                written += 1;
                summary.bytes += (k.len() + v.len()) as u64;
                Ok(true)
            })?;
            if written != count {
                return Err(StoreError::Corrupt {
                    tree: name,
                    message: "changed while it was backed up".into(),
                });
            }
            summary.trees += 1;
            summary.entries += written;
        }
        self.backup_output(&mut w, tmp, &mut summary)?;
        self.backup_recordings(&mut w, tmp, &mut summary)?;
        let mut sink = w.into_inner().map_err(|e| io(tmp)(e.into_error()))?;
        sink.flush().map_err(io(tmp))?;
        Ok(summary)
    }

    /// Writes the output files as the backup's `output` section. Files only
    /// grow while this runs (running operations append): each is copied up
    /// to where its last whole record ended when it was counted.
    fn backup_output(
        &self,
        w: &mut impl Write,
        tmp: &Path,
        summary: &mut BackupSummary,
    ) -> StoreResult<()> {
        if let output::Outputs::Database = self.outputs {
            // Chunks are rows keyed as the section's entries are.
            let all = super::kv::Range::all();
            let mut count = 0u64;
            super::kv::scan(&*self.kv, output::CHUNKS_TREE, &all, |_, _| {
                count += 1;
                Ok(true)
            })?;
            write_bytes(w, super::OUTPUT_TREE.as_bytes()).map_err(io(tmp))?;
            w.write_all(&count.to_be_bytes()).map_err(io(tmp))?;
            let mut written = 0u64;
            super::kv::scan(&*self.kv, output::CHUNKS_TREE, &all, |k, v| {
                if written < count {
                    write_bytes(w, k).map_err(io(tmp))?;
                    write_bytes(w, v).map_err(io(tmp))?;
                    written += 1;
                    summary.bytes += (k.len() + v.len()) as u64;
                }
                Ok(written < count)
            })?;
            summary.trees += 1;
            summary.entries += written;
            return Ok(());
        }
        let mut files = Vec::new();
        let mut count = 0u64;
        for (op, path) in output::files(&self.dir)? {
            let len = std::fs::metadata(&path).map_err(io(&path))?.len();
            let end = output::each_record(&path, len, |_| {
                count += 1;
                Ok(())
            })?;
            files.push((op, path, end));
        }
        write_bytes(w, super::OUTPUT_TREE.as_bytes()).map_err(io(tmp))?;
        w.write_all(&count.to_be_bytes()).map_err(io(tmp))?;
        let mut written = 0u64;
        for (op, path, end) in files {
            output::each_record(&path, end, |payload| {
                let chunk: crate::domain::OutputChunk = super::decode("output", payload)?;
                let mut key = op.key().to_vec();
                key.extend_from_slice(&chunk.seq.to_be_bytes());
                write_bytes(w, &key).map_err(io(tmp))?;
                write_bytes(w, payload).map_err(io(tmp))?;
                written += 1;
                summary.bytes += (key.len() + payload.len()) as u64;
                Ok(())
            })?;
        }
        if written != count {
            return Err(StoreError::Corrupt {
                tree: super::OUTPUT_TREE.into(),
                message: "changed while it was backed up".into(),
            });
        }
        summary.trees += 1;
        summary.entries += written;
        Ok(())
    }

    /// Writes the session recordings as the backup's recordings section:
    /// each file by name, up to its last whole line (an open session's
    /// grows meanwhile).
    fn backup_recordings(
        &self,
        w: &mut impl Write,
        tmp: &Path,
        summary: &mut BackupSummary,
    ) -> StoreResult<()> {
        if self.shared() {
            // Recordings are rows: written as the files they would be.
            let mut sessions = Vec::new();
            super::kv::scan(
                &*self.kv,
                super::SESSIONS_TREE,
                &super::kv::Range::all(),
                |k, _| {
                    sessions.push(crate::domain::Id::from_key(k).unwrap_or(crate::domain::Id(0)));
                    Ok(true)
                },
            )?;
            let mut found = Vec::new();
            for id in sessions {
                for (track, name) in [
                    (super::recording::Track::Output, format!("{}.cast", id.0)),
                    (
                        super::recording::Track::Input,
                        format!("{}.input.cast", id.0),
                    ),
                ] {
                    if let Some(text) = self.recording(id, track)? {
                        found.push((name, text));
                    }
                }
            }
            write_bytes(w, RECORDINGS.as_bytes()).map_err(io(tmp))?;
            w.write_all(&(found.len() as u64).to_be_bytes())
                .map_err(io(tmp))?;
            for (name, text) in &found {
                write_bytes(w, name.as_bytes()).map_err(io(tmp))?;
                write_bytes(w, text.as_bytes()).map_err(io(tmp))?;
                summary.bytes += (name.len() + text.len()) as u64;
            }
            summary.trees += 1;
            summary.entries += found.len() as u64;
            return Ok(());
        }
        let dir = self.dir.join("sessions");
        // Names first (the section says how many), then each file read and
        // written in turn: one recording in memory at a time.
        let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
        if dir.exists() {
            for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
                let path = entry.map_err(io(&dir))?.path();
                let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                    continue;
                };
                if recording_name(name) {
                    files.push((name.to_string(), path.clone()));
                }
            }
        }
        write_bytes(w, RECORDINGS.as_bytes()).map_err(io(tmp))?;
        w.write_all(&(files.len() as u64).to_be_bytes())
            .map_err(io(tmp))?;
        for (name, path) in &files {
            let mut bytes = std::fs::read(path).map_err(io(path))?;
            let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            bytes.truncate(whole);
            write_bytes(w, name.as_bytes()).map_err(io(tmp))?;
            write_bytes(w, &bytes).map_err(io(tmp))?;
            summary.bytes += (name.len() + bytes.len()) as u64;
        }
        summary.trees += 1;
        summary.entries += files.len() as u64;
        Ok(())
    }

    /// Loads a backup into the empty data directory `dir`.
    pub fn restore(dir: &Path, backup: &Path) -> StoreResult<BackupSummary> {
        let db_dir = dir.join(super::DB_DIR);
        if db_dir.exists() {
            return Err(StoreError::Io {
                path: db_dir,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "restore goes into an empty data directory; this one has a store",
                ),
            });
        }
        let file = std::fs::File::open(backup).map_err(io(backup))?;
        let mut r = BufReader::new(file);
        let mut magic = vec![0u8; MAGIC.len()];
        r.read_exact(&mut magic).map_err(io(backup))?;
        if magic != MAGIC {
            return Err(StoreError::Corrupt {
                tree: backup.display().to_string(),
                message: "not a Gatehouse backup".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let db = sled::Config::new().path(&db_dir).open()?;
        let mut summary = BackupSummary::default();
        let mut outputs = output::Restorer::new(dir)?;
        let truncated = || StoreError::Corrupt {
            tree: backup.display().to_string(),
            message: "the backup ends early (truncated?)".into(),
        };
        while let Some(name) = read_bytes(&mut r).map_err(io(backup))? {
            let mut count = [0u8; 8];
            r.read_exact(&mut count).map_err(|_| truncated())?;
            let is_output = name == super::OUTPUT_TREE.as_bytes();
            let is_recordings = name == RECORDINGS.as_bytes();
            let tree = if is_output || is_recordings {
                None
            } else {
                Some(db.open_tree(&name)?)
            };
            for _ in 0..u64::from_be_bytes(count) {
                let k = read_bytes(&mut r)
                    .map_err(io(backup))?
                    .ok_or_else(truncated)?;
                let v = read_bytes(&mut r)
                    .map_err(io(backup))?
                    .ok_or_else(truncated)?;
                summary.bytes += (k.len() + v.len()) as u64;
                match &tree {
                    Some(tree) => {
                        tree.insert(k, v)?;
                    }
                    None if is_recordings => restore_recording(dir, &k, &v)?,
                    None => outputs.add(&k, &v)?,
                }
                summary.entries += 1;
            }
            summary.trees += 1;
        }
        outputs.finish()?;
        db.flush()?;
        Ok(summary)
    }
}
