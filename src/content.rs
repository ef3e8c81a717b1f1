//! Document content on its way in and out: an upload is hashed (SHA-256 of the plaintext), its
//! type sniffed from its first bytes, encrypted (`crypto::stream`) and written to the object store
//! as it arrives; a download reads the object back a window of chunks at a time and opens each
//! chunk as it goes. Both hold a bounded amount in memory whatever the file's size.

use std::ops::Range;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use crate::blobs::{BlobWriter, Blobs};
use crate::crypto::stream::{self, ContentError, ContentKey, Sealer, CHUNK, HEADER};

/// How many bytes the type is sniffed from.
const SNIFF: usize = 8 * 1024;
/// Chunks read from the object store per request on the way out (about 1 MiB).
const WINDOW: u64 = 16;

/// A request body that pauses (yields `Pending`, waking itself at once) after every `PACE` bytes
/// handed on. A multipart parser reads its input until the input has nothing ready; from a fast
/// client on a fast network that can be most of the file. Paced, it takes about `PACE` at a time,
/// so an upload holds a bounded amount in memory whatever the client's speed.
pub struct Paced<S> {
    inner: S,
    since_pause: usize,
}

const PACE: usize = 256 * 1024;

impl<S> Paced<S> {
    pub fn new(inner: S) -> Self {
        Paced {
            inner,
            since_pause: 0,
        }
    }
}

impl<S, E> Stream for Paced<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.since_pause >= PACE {
            self.since_pause = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let next = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        match &next {
            Poll::Ready(Some(Ok(b))) => self.since_pause += b.len(),
            Poll::Pending => self.since_pause = 0,
            _ => {}
        }
        next
    }
}

/// What an upload stored.
#[derive(Debug, Clone)]
pub struct Stored {
    pub size: u64,
    pub sha256: String,
    pub content_type: &'static str,
}

/// Why an upload stopped.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the file is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the upload was interrupted: {0}")]
    Client(String),
    #[error(transparent)]
    Storage(#[from] anyhow::Error),
}

/// Encrypts `body` under `key` for version `version_id` into `writer`, at most `max` bytes of
/// plaintext. On any error the caller aborts the writer.
///
/// Three things run at once where there are cores for them: each piece that arrives is sealed (a
/// chunk at a time, each sealed chunk in a buffer of its own that goes to the writer without a
/// copy) on a blocking thread, while this task hashes the same piece (shared, not copied) and
/// then receives the next one.
pub async fn store<S>(
    key: &ContentKey,
    version_id: &str,
    writer: &mut BlobWriter,
    mut body: S,
    max: u64,
) -> Result<Stored, UploadError>
where
    S: Stream<Item = Result<Bytes, UploadError>> + Unpin,
{
    let (sealer, header) = key.sealer(version_id);
    writer.put(Bytes::from(header)).await?;
    let mut sealer = Some(Box::new(sealer));
    type Work = tokio::task::JoinHandle<(Box<Sealer>, Result<Vec<Bytes>, ContentError>)>;
    let mut working: Option<Work> = None;
    let mut hash = Sha256::new();
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF);
    let mut size: u64 = 0;
    loop {
        let sealing = async {
            match working.take() {
                Some(w) => Some(w.await),
                None => None,
            }
        };
        let (next, done) = tokio::join!(body.next(), sealing);
        if let Some(done) = done {
            let (back, sealed) =
                done.map_err(|e| UploadError::Storage(anyhow::anyhow!("sealing task: {e}")))?;
            sealer = Some(back);
            for chunk in sealed.map_err(content_err)? {
                writer.put(chunk).await?;
            }
        }
        let Some(part) = next else {
            break;
        };
        let part = part?;
        size += part.len() as u64;
        if size > max {
            return Err(UploadError::TooLarge(max));
        }
        let mut s = sealer.take().ok_or_else(lost)?;
        let piece = part.clone();
        working = Some(tokio::task::spawn_blocking(move || {
            let mut sealed = Vec::new();
            let r = s.push_chunks(&piece, &mut sealed).map(|()| sealed);
            (s, r)
        }));
        if head.len() < SNIFF {
            let take = (SNIFF - head.len()).min(part.len());
            head.extend_from_slice(&part[..take]);
        }
        hash.update(&part);
    }
    let last = sealer.ok_or_else(lost)?.finish().map_err(content_err)?;
    writer.put(Bytes::from(last)).await?;
    Ok(Stored {
        size,
        sha256: hex::encode(hash.finalize()),
        content_type: sniff(&head),
    })
}

fn lost() -> UploadError {
    UploadError::Storage(anyhow::anyhow!("the sealing state was lost"))
}

fn content_err(e: ContentError) -> UploadError {
    UploadError::Storage(anyhow::anyhow!(e))
}

/// The media type of content starting with `head`, from the bytes alone (never from what the
/// client said): a known signature (`infer`), else text (HTML and SVG recognised as such, so they
/// are never mistaken for harmless text), else `application/octet-stream`.
pub fn sniff(head: &[u8]) -> &'static str {
    // Binary signatures; markup is told apart below (an SVG is XML to `infer`).
    if let Some(t) = infer::get(head).filter(|t| t.matcher_type() != infer::MatcherType::Text) {
        return t.mime_type();
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        // A character cut at the end of the sniffed bytes is still text.
        Err(e) if e.error_len().is_none() && e.valid_up_to() + 4 > head.len() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return "application/octet-stream",
    };
    if text.contains('\0') {
        return "application/octet-stream";
    }
    let lower = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .to_ascii_lowercase();
    if lower.contains("<svg") {
        "image/svg+xml"
    } else if lower.starts_with("<!doctype html")
        || lower.starts_with("<html")
        || ["<script", "<body", "<head", "<iframe", "<meta", "<object"]
            .iter()
            .any(|t| lower.contains(t))
    {
        "text/html"
    } else if lower.starts_with("<?xml") {
        "application/xml"
    } else if lower.starts_with("%pdf") {
        "application/pdf"
    } else {
        "text/plain"
    }
}

/// A ranged read of a stored document: `range` (of plaintext bytes, end exclusive, within the
/// size) as a stream of opened bytes. The object's length and its first window are checked before
/// this returns, so the common failures (a truncated, extended or foreign object, a flipped bit
/// near its start) are an error here rather than a cut-off response; a failure further in ends the
/// stream with an error (the client sees an incomplete download, never wrong bytes).
pub async fn open_range(
    blobs: &Blobs,
    key: ContentKey,
    version_id: &str,
    object_key: &str,
    size: u64,
    range: Range<u64>,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, ContentError> {
    let stored = blobs
        .size(object_key)
        .await
        .map_err(|_| ContentError::Missing)?;
    match stored {
        Some(n) if n == stream::sealed_len(size) => {}
        Some(n) if n < stream::sealed_len(size) => return Err(ContentError::Truncated),
        Some(_) => return Err(ContentError::BadHeader),
        None => return Err(ContentError::Missing),
    }
    let header = blobs
        .get_range(object_key, 0..HEADER as u64)
        .await
        .map_err(|_| ContentError::Truncated)?
        .to_vec();
    let reader = Reader {
        blobs: blobs.clone(),
        key,
        version_id: version_id.to_string(),
        object_key: object_key.to_string(),
        header,
        size,
        range: range.clone(),
        next_chunk: range.start / CHUNK as u64,
        last_chunk: if range.end > range.start {
            (range.end - 1) / CHUNK as u64
        } else {
            range.start / CHUNK as u64
        }
        .min(stream::chunk_count(size) - 1),
    };
    let mut reader = reader;
    let first = reader.window().await?;
    let rest = futures_util::stream::unfold(reader, |mut r| async move {
        if r.next_chunk > r.last_chunk {
            return None;
        }
        match r.window().await {
            Ok(b) => Some((Ok(b), r)),
            Err(e) => {
                tracing::error!(object = %r.object_key, error = %e, "stored document failed to open midway");
                r.next_chunk = u64::MAX;
                Some((Err(std::io::Error::other(e)), r))
            }
        }
    });
    Ok(futures_util::stream::once(async move { Ok(first) }).chain(rest))
}

struct Reader {
    blobs: Blobs,
    key: ContentKey,
    version_id: String,
    object_key: String,
    header: Vec<u8>,
    size: u64,
    range: Range<u64>,
    next_chunk: u64,
    last_chunk: u64,
}

impl Reader {
    /// The next window of chunks, opened and cut to the range.
    async fn window(&mut self) -> Result<Bytes, ContentError> {
        let first = self.next_chunk;
        let last = (first + WINDOW - 1).min(self.last_chunk);
        let (start, _) = stream::chunk_span(self.size, first);
        let (end_off, end_len) = stream::chunk_span(self.size, last);
        let sealed = self
            .blobs
            .get_range(&self.object_key, start..end_off + end_len)
            .await
            .map_err(|_| ContentError::Truncated)?;
        let mut out = Vec::with_capacity(((last - first + 1) * CHUNK as u64) as usize);
        for i in first..=last {
            let (off, len) = stream::chunk_span(self.size, i);
            let from = usize::try_from(off - start).map_err(|_| ContentError::TooLarge)?;
            let to = from + usize::try_from(len).map_err(|_| ContentError::TooLarge)?;
            let chunk = sealed.get(from..to).ok_or(ContentError::Truncated)?;
            let plain = self
                .key
                .open_chunk(&self.version_id, &self.header, self.size, i, chunk)?;
            let chunk_start = i * CHUNK as u64;
            let lo = self.range.start.saturating_sub(chunk_start) as usize;
            let hi = (self.range.end.saturating_sub(chunk_start) as usize).min(plain.len());
            if lo < hi {
                out.extend_from_slice(&plain[lo..hi]);
            }
        }
        self.next_chunk = last + 1;
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::sniff;

    #[test]
    fn types_come_from_the_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(
            sniff(b"<!DOCTYPE html><html><script>alert(1)</script>"),
            "text/html"
        );
        assert_eq!(sniff(b"  <script>alert(1)</script>"), "text/html");
        assert_eq!(
            sniff(
                b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script/></svg>"
            ),
            "image/svg+xml"
        );
        assert_eq!(sniff("Plain words, caf\u{e9}".as_bytes()), "text/plain");
        assert_eq!(sniff(b"\x00\x01\x02binary"), "application/octet-stream");
        assert_eq!(sniff(b""), "text/plain");
    }
}
