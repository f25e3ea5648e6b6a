//! Operation output, kept out of sled: one append-only file per operation in
//! `output/` under the data directory.
//!
//! Output is most of what a store holds by volume and is written once and
//! read in order, which sled does poorly: every megabyte stored there stayed
//! in the server's memory (measured in BENCHMARKS.md). A file per operation
//! costs nothing in memory, and its page cache belongs to the kernel.
//!
//! A file is a sequence of records: the payload's length (u32, big-endian),
//! its CRC-32 (u32, big-endian), then the payload, an [`OutputChunk`] encoded
//! like every stored value. Each record goes to the kernel in one `write`, so
//! a server killed at any moment leaves whole records and at most one torn
//! one at the end; readers stop at a torn or damaged record, and the next
//! writer of that operation cuts it off before appending.

use super::{decode, encode, StoreError, StoreResult};
use crate::domain::{Id, OutputChunk};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The folder inside the data directory.
const OUTPUT_DIR: &str = "output";
/// Bytes before each payload: its length and its CRC.
const HEADER: u64 = 8;
/// No chunk is larger (the writer merges up to 32 KiB; the cap is per
/// operation): a longer length is damage, not data.
const MAX_RECORD: u32 = 64 * 1024 * 1024;
/// One position in [`Cursor::marks`] for every this many records.
const MARK_EVERY: u64 = 64;
/// How many operations' read positions are kept between reads.
const CURSORS: usize = 128;
/// A read stops after this many bytes of output (one answer stays well
/// inside a frame, whatever chunk count a client asks for).
const READ_BUDGET: usize = 1024 * 1024;

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file of one operation's output.
fn path_of(dir: &Path, op: Id) -> PathBuf {
    dir.join(OUTPUT_DIR).join(format!("{:020}.out", op.0))
}

/// Creates (or empties) a file only the service account reads.
fn create(path: &Path) -> StoreResult<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path))
}

/// One record, ready to write in a single call.
fn record(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + HEADER as usize);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Reads the record at the reader's position: `None` at the end of the file
/// or at a torn or damaged record (both end what can be read).
fn read_record(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; HEADER as usize];
    match r.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_RECORD {
        return Ok(None);
    }
    let mut payload = vec![0u8; len as usize];
    match r.read_exact(&mut payload) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    if crc32fast::hash(&payload) != crc {
        return Ok(None);
    }
    Ok(Some(payload))
}

/// What is known of one file from reading it: where every
/// [`MARK_EVERY`]th record starts, and how far it has been read.
#[derive(Default)]
struct Cursor {
    /// (sequence number, offset) of records 0, 64, 128, …
    marks: Vec<(u64, u64)>,
    /// Records read and checked so far.
    records: u64,
    /// The offset after the last record read and checked.
    end: u64,
    /// The sequence number after the last record read.
    next_seq: u64,
}

impl Cursor {
    /// Where to start reading for chunks with `seq >= from`.
    fn start_for(&self, from: u64) -> u64 {
        if from >= self.next_seq {
            return self.end;
        }
        match self.marks.partition_point(|&(seq, _)| seq <= from) {
            0 => 0,
            n => self.marks[n - 1].1,
        }
    }

    /// Notes a checked record read at `offset`, if it is new.
    fn learn(&mut self, offset: u64, len: u64, seq: u64) {
        if offset != self.end {
            return;
        }
        if self.records % MARK_EVERY == 0 {
            self.marks.push((seq, offset));
        }
        self.records += 1;
        self.end = offset + HEADER + len;
        self.next_seq = seq + 1;
    }
}

/// Reads `from`, `limit` from one file, learning its layout on the way.
fn read_chunks(
    path: &Path,
    cursor: &mut Cursor,
    from: u64,
    limit: usize,
) -> StoreResult<Vec<OutputChunk>> {
    let mut out = Vec::new();
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(path)(e)),
    };
    let mut offset = cursor.start_for(from);
    let mut r = BufReader::with_capacity(64 * 1024, file);
    r.seek(SeekFrom::Start(offset)).map_err(io(path))?;
    let mut bytes = 0usize;
    while out.len() < limit && bytes < READ_BUDGET {
        let Some(payload) = read_record(&mut r).map_err(io(path))? else {
            break;
        };
        let chunk: OutputChunk = decode("output", &payload)?;
        cursor.learn(offset, payload.len() as u64, chunk.seq);
        offset += HEADER + payload.len() as u64;
        if chunk.seq >= from {
            bytes += chunk.bytes.len();
            out.push(chunk);
        }
    }
    Ok(out)
}

type SharedCursor = Arc<Mutex<Cursor>>;

/// Every operation's output files, and what is known of the ones read lately.
pub(super) struct OutputFiles {
    dir: PathBuf,
    /// Read positions by operation, with when each was last used.
    cursors: Mutex<HashMap<Id, (u64, SharedCursor)>>,
    uses: std::sync::atomic::AtomicU64,
}

impl OutputFiles {
    /// The output files under the data directory `dir` (made when missing).
    pub(super) fn open(dir: &Path) -> StoreResult<OutputFiles> {
        let folder = dir.join(OUTPUT_DIR);
        std::fs::create_dir_all(&folder).map_err(io(&folder))?;
        Ok(OutputFiles {
            dir: dir.to_path_buf(),
            cursors: Mutex::new(HashMap::new()),
            uses: Default::default(),
        })
    }

    fn cursor(&self, op: Id) -> SharedCursor {
        let now = self.uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut cursors = self.cursors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((used, cursor)) = cursors.get_mut(&op) {
            *used = now;
            return cursor.clone();
        }
        if cursors.len() >= CURSORS {
            if let Some(oldest) = cursors.iter().min_by_key(|(_, (used, _))| *used) {
                let oldest = *oldest.0;
                cursors.remove(&oldest);
            }
        }
        let cursor = Arc::new(Mutex::new(Cursor::default()));
        cursors.insert(op, (now, cursor.clone()));
        cursor
    }

    /// An operation's chunks with `seq >= from`, at most `limit`, as far as
    /// they are written.
    pub(super) fn read(&self, op: Id, from: u64, limit: usize) -> StoreResult<Vec<OutputChunk>> {
        let cursor = self.cursor(op);
        let mut cursor = cursor.lock().unwrap_or_else(|p| p.into_inner());
        read_chunks(&path_of(&self.dir, op), &mut cursor, from, limit)
    }

    /// Opens an operation's file for appending, cutting off a torn record
    /// left at its end by a server that was killed.
    pub(super) fn writer(&self, op: Id) -> StoreResult<OutputWriter> {
        OutputWriter::open(path_of(&self.dir, op))
    }
}

/// Where output goes: a file per operation beside sled, or rows of the
/// shared database (every server reads every operation's output there).
pub(super) enum Outputs {
    Files(OutputFiles),
    Database,
}

/// The tree of output chunks in a shared database: keys are the operation
/// id then the chunk's sequence number, both big-endian.
pub(super) const CHUNKS_TREE: &str = "output_chunks";

fn chunk_key(op: Id, seq: u64) -> Vec<u8> {
    let mut key = op.key().to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

impl Outputs {
    pub(super) fn read(
        &self,
        kv: &dyn super::kv::Backend,
        op: Id,
        from: u64,
        limit: usize,
    ) -> StoreResult<Vec<OutputChunk>> {
        match self {
            Outputs::Files(files) => files.read(op, from, limit),
            Outputs::Database => {
                let range = super::kv::Range {
                    from: chunk_key(op, from),
                    to: super::kv::after_prefix(&op.key()),
                    reverse: false,
                    limit: Some(limit),
                };
                let mut out = Vec::new();
                let mut bytes = 0;
                for (_, v) in kv.range(CHUNKS_TREE, &range)? {
                    if !out.is_empty() && bytes >= READ_BUDGET {
                        break;
                    }
                    let chunk: OutputChunk = decode(CHUNKS_TREE, &v)?;
                    bytes += chunk.bytes.len();
                    out.push(chunk);
                }
                Ok(out)
            }
        }
    }

    pub(super) fn writer(
        &self,
        kv: &Arc<dyn super::kv::Backend>,
        op: Id,
    ) -> StoreResult<OutputWriter> {
        match self {
            Outputs::Files(files) => files.writer(op),
            Outputs::Database => {
                let last = kv.range(
                    CHUNKS_TREE,
                    &super::kv::Range::prefix(&op.key()).reversed().limit(1),
                )?;
                let next_seq = match last.first() {
                    Some((_, v)) => decode::<OutputChunk>(CHUNKS_TREE, v)?.seq + 1,
                    None => 0,
                };
                Ok(OutputWriter {
                    sink: Sink::Database { kv: kv.clone(), op },
                    next_seq,
                })
            }
        }
    }
}

/// Appends one operation's chunks. One writer per operation at a time (its
/// attempts run one after another).
pub struct OutputWriter {
    sink: Sink,
    next_seq: u64,
}

enum Sink {
    File {
        file: File,
        path: PathBuf,
    },
    Database {
        kv: Arc<dyn super::kv::Backend>,
        op: Id,
    },
}

impl OutputWriter {
    pub(super) fn open(path: PathBuf) -> StoreResult<OutputWriter> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        // Find the end of the last whole record.
        let mut cursor = Cursor::default();
        let mut r = BufReader::with_capacity(64 * 1024, &mut file);
        let mut offset = 0u64;
        while let Some(payload) = read_record(&mut r).map_err(io(&path))? {
            let chunk: OutputChunk = decode("output", &payload)?;
            cursor.learn(offset, payload.len() as u64, chunk.seq);
            offset = cursor.end;
        }
        drop(r);
        let len = file.metadata().map_err(io(&path))?.len();
        if len > cursor.end {
            tracing::warn!(
                file = %path.display(),
                kept = cursor.end,
                cut = len - cursor.end,
                "cutting a torn record off the end of an output file"
            );
            file.set_len(cursor.end).map_err(io(&path))?;
        }
        Ok(OutputWriter {
            sink: Sink::File { file, path },
            next_seq: cursor.next_seq,
        })
    }

    /// The sequence number the next chunk takes.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Appends a chunk (to the kernel: it survives the server being killed;
    /// [`OutputWriter::sync`] puts it on disk).
    pub fn append(&mut self, chunk: &OutputChunk) -> StoreResult<()> {
        match &mut self.sink {
            Sink::File { file, path } => {
                let bytes = record(&encode(chunk)?);
                file.write_all(&bytes).map_err(io(path))?;
            }
            Sink::Database { kv, op } => kv.apply_lazy(vec![super::kv::Write::put(
                CHUNKS_TREE,
                chunk_key(*op, chunk.seq),
                encode(chunk)?,
            )])?,
        }
        self.next_seq = self.next_seq.max(chunk.seq + 1);
        Ok(())
    }

    /// Puts everything appended on disk.
    pub fn sync(&self) -> StoreResult<()> {
        match &self.sink {
            Sink::File { file, path } => super::blocking(|| file.sync_data().map_err(io(path))),
            Sink::Database { kv, .. } => kv.flush(),
        }
    }
}

/// The operations that have output files, in id order, with each file's path.
pub(super) fn files(dir: &Path) -> StoreResult<Vec<(Id, PathBuf)>> {
    let folder = dir.join(OUTPUT_DIR);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&folder) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(&folder)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io(&folder))?;
        let name = entry.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".out"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        out.push((Id(id), entry.path()));
    }
    out.sort_by_key(|(id, _)| *id);
    Ok(out)
}

/// Calls `each` with the payload of every whole record in the first `len`
/// bytes of a file (what a backup copies); returns where the last one ends.
pub(super) fn each_record(
    path: &Path,
    len: u64,
    mut each: impl FnMut(&[u8]) -> StoreResult<()>,
) -> StoreResult<u64> {
    let file = File::open(path).map_err(io(path))?;
    let mut r = BufReader::with_capacity(64 * 1024, file.take(len));
    let mut end = 0u64;
    while let Some(payload) = read_record(&mut r).map_err(io(path))? {
        each(&payload)?;
        end += HEADER + payload.len() as u64;
    }
    Ok(end)
}

/// Writes the chunks of a backup's output section to their files, one
/// operation after another (the section is in key order).
pub(super) struct Restorer {
    dir: PathBuf,
    current: Option<(Id, PathBuf, std::io::BufWriter<File>)>,
    files: u64,
}

impl Restorer {
    pub(super) fn new(dir: &Path) -> StoreResult<Restorer> {
        let folder = dir.join(OUTPUT_DIR);
        std::fs::create_dir_all(&folder).map_err(io(&folder))?;
        Ok(Restorer {
            dir: dir.to_path_buf(),
            current: None,
            files: 0,
        })
    }

    /// Appends the chunk stored under `key` (operation id, sequence number).
    pub(super) fn add(&mut self, key: &[u8], payload: &[u8]) -> StoreResult<()> {
        let op =
            Id::from_key(key.get(..8).unwrap_or_default()).ok_or_else(|| StoreError::Corrupt {
                tree: OUTPUT_DIR.to_string(),
                message: format!("a key of {} bytes", key.len()),
            })?;
        if self.current.as_ref().map(|(id, _, _)| *id) != Some(op) {
            self.finish_one()?;
            let path = path_of(&self.dir, op);
            let file = create(&path)?;
            self.current = Some((op, path, std::io::BufWriter::new(file)));
            self.files += 1;
        }
        if let Some((_, path, w)) = self.current.as_mut() {
            w.write_all(&record(payload)).map_err(io(path))?;
        }
        Ok(())
    }

    fn finish_one(&mut self) -> StoreResult<()> {
        if let Some((_, path, w)) = self.current.take() {
            let file = w.into_inner().map_err(|e| io(&path)(e.into_error()))?;
            file.sync_all().map_err(io(&path))?;
        }
        Ok(())
    }

    /// Syncs the last file and the folder; returns how many files it wrote.
    pub(super) fn finish(mut self) -> StoreResult<u64> {
        self.finish_one()?;
        let folder = self.dir.join(OUTPUT_DIR);
        File::open(&folder)
            .and_then(|f| f.sync_all())
            .map_err(io(&folder))?;
        Ok(self.files)
    }
}

/// Moves every chunk of the sled tree `tree` (keyed by operation id, then
/// sequence number) to the operations' files, and syncs them. Run again
/// after a crash it starts over: each file is rewritten from its first chunk.
pub(super) fn move_from_tree(db: &sled::Db, dir: &Path, tree: &str) -> StoreResult<(u64, u64)> {
    if !db
        .tree_names()
        .iter()
        .any(|n| n.as_ref() == tree.as_bytes())
    {
        return Ok((0, 0));
    }
    let mut restorer = Restorer::new(dir)?;
    let mut chunks = 0u64;
    for item in db.open_tree(tree)?.iter() {
        let (key, value) = item?;
        restorer.add(&key, &value)?;
        chunks += 1;
    }
    Ok((restorer.finish()?, chunks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Stream, Timestamp};

    fn chunk(seq: u64, text: &str) -> OutputChunk {
        OutputChunk {
            seq,
            stream: Stream::Stdout,
            time: Timestamp(seq as i64),
            bytes: text.as_bytes().to_vec(),
        }
    }

    fn texts(chunks: &[OutputChunk]) -> Vec<String> {
        chunks
            .iter()
            .map(|c| String::from_utf8_lossy(&c.bytes).into_owned())
            .collect()
    }

    #[test]
    fn chunks_read_back_from_any_sequence_number_while_more_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        let files = OutputFiles::open(dir.path()).unwrap();
        let op = Id(7);
        assert!(files.read(op, 0, 10).unwrap().is_empty());
        let mut w = files.writer(op).unwrap();
        for seq in 0..500 {
            w.append(&chunk(seq, &format!("line {seq}"))).unwrap();
            if seq % 97 == 0 {
                // A reader in the middle learns the file as it grows.
                let got = files.read(op, seq, 2).unwrap();
                assert_eq!(texts(&got), vec![format!("line {seq}")]);
            }
        }
        w.sync().unwrap();
        for from in [0, 1, 63, 64, 65, 200, 499] {
            let got = files.read(op, from, 3).unwrap();
            assert_eq!(got[0].seq, from, "from {from}");
            assert_eq!(got.len(), 3.min(500 - from as usize));
        }
        assert!(files.read(op, 500, 10).unwrap().is_empty());
        assert_eq!(files.read(op, 0, 10_000).unwrap().len(), 500);
        // Another operation's file is its own.
        assert!(files.read(Id(8), 0, 10).unwrap().is_empty());
    }

    #[test]
    fn one_read_holds_a_few_mib_whatever_the_count_asked_and_reading_on_gets_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let files = OutputFiles::open(dir.path()).unwrap();
        let op = Id(9);
        let mut w = files.writer(op).unwrap();
        let big = "x".repeat(64 * 1024);
        for seq in 0..200 {
            w.append(&chunk(seq, &big)).unwrap();
        }
        let first = files.read(op, 0, 100_000).unwrap();
        assert_eq!(first.len(), READ_BUDGET / big.len());
        let (mut from, mut total) = (0, 0);
        loop {
            let page = files.read(op, from, 100_000).unwrap();
            let Some(last) = page.last() else { break };
            assert_eq!(page[0].seq, from);
            from = last.seq + 1;
            total += page.len();
        }
        assert_eq!(total, 200);
    }

    #[test]
    fn a_torn_or_damaged_end_is_never_read_and_the_next_writer_cuts_it_off() {
        let dir = tempfile::tempdir().unwrap();
        let files = OutputFiles::open(dir.path()).unwrap();
        let op = Id(3);
        let mut w = files.writer(op).unwrap();
        for seq in 0..3 {
            w.append(&chunk(seq, "whole")).unwrap();
        }
        drop(w);
        let path = path_of(dir.path(), op);
        let whole = std::fs::metadata(&path).unwrap().len();
        // A record cut short, as a kill in the middle of a write would leave.
        let torn = record(&encode(&chunk(3, "torn record")).unwrap());
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&torn[..torn.len() - 4]).unwrap();
        drop(f);
        let fresh = OutputFiles::open(dir.path()).unwrap();
        assert_eq!(fresh.read(op, 0, 10).unwrap().len(), 3);
        // A damaged one (zeros where the payload was) is no better.
        let mut bad = torn.clone();
        let n = bad.len();
        bad[n - 3..].fill(0);
        std::fs::write(
            &path,
            [
                std::fs::read(&path).unwrap()[..whole as usize].to_vec(),
                bad,
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(fresh.read(op, 0, 10).unwrap().len(), 3);

        let mut w = files.writer(op).unwrap();
        assert_eq!(w.next_seq(), 3);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        w.append(&chunk(3, "after")).unwrap();
        let got = fresh.read(op, 0, 10).unwrap();
        assert_eq!(texts(&got), vec!["whole", "whole", "whole", "after"]);
    }
}
