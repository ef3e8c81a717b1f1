//! Document content encryption: a random key per document version, wrapped by the org's data key,
//! and the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár) from the `aead` crate
//! (`StreamBE32`: a 32-bit big-endian chunk counter and a "last chunk" flag in each nonce) over
//! AES-256-GCM, so that uploads and downloads stream in constant memory and a stored object that
//! was truncated, had chunks reordered, dropped or swapped in from another object, or had a bit
//! flipped, fails to open with a clear error instead of yielding wrong bytes.
//!
//! AES-256-GCM comes from `aws-lc-rs` (already linked for TLS to S3): its assembly uses the CPU's
//! AES and carry-less multiply instructions and seals several GB/s per core, where a portable
//! XChaCha20-Poly1305 (the first format, `SRD1`, never released) managed about 0.6 GB/s and cost
//! uploads half their throughput. Every document version has its own random key that seals one
//! object only, so the 96-bit GCM nonce (7-byte random prefix ‖ counter ‖ last flag) never repeats
//! under a key and no birthday bound applies.
//!
//! Object layout: `SRD2` ‖ 7-byte random nonce prefix ‖ chunks. Every chunk holds `CHUNK` bytes of
//! plaintext (64 KiB) but the last, which holds 1 to `CHUNK` bytes (none for an empty file), each
//! followed by its 16-byte tag. Each chunk is authenticated with the document id and version as
//! associated data, so an object copied under another document does not open either. Chunk `i`
//! can be opened alone (for `Range` requests) given the plaintext size.

use aws_lc_rs::aead::{Aad, LessSafeKey, UnboundKey, AES_256_GCM};
use chacha20poly1305::aead::consts::{U0, U12, U16};
use chacha20poly1305::aead::generic_array::GenericArray;
use chacha20poly1305::aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use chacha20poly1305::aead::{AeadCore, AeadInPlace, Payload};
use rand::RngCore;
use zeroize::Zeroize;

use super::{KeyBytes, TenantKey};

/// Plaintext bytes per chunk.
pub const CHUNK: usize = 64 * 1024;
const TAG: usize = 16;
const MAGIC: &[u8; 4] = b"SRD2";
/// The random part of every chunk's nonce (12 bytes less the 5 that STREAM fills in).
const PREFIX: usize = 7;
/// Bytes before the first chunk.
pub const HEADER: usize = MAGIC.len() + PREFIX;
/// The most plaintext one object can hold (the chunk counter is 32 bits).
pub const MAX_PLAINTEXT: u64 = (u32::MAX as u64) * CHUNK as u64;

/// Why stored content did not open.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContentError {
    #[error("the stored object is not a Strongroom document (bad header)")]
    BadHeader,
    #[error(
        "the stored object is corrupt, truncated or tampered with (chunk {0} did not authenticate)"
    )]
    Corrupt(u64),
    #[error("the stored object is truncated (it ended before its last chunk)")]
    Truncated,
    #[error("the document is too large for one object")]
    TooLarge,
    #[error("the stored object is missing")]
    Missing,
}

/// A document version's content key (random, never stored unwrapped).
pub struct ContentKey(KeyBytes);

impl ContentKey {
    pub fn random() -> Self {
        ContentKey(KeyBytes::random())
    }

    fn ad(doc: &str) -> (String, String) {
        ("documents".to_string(), format!("content_key:{doc}"))
    }

    /// The key sealed under the org's data key, bound to document (version) `doc`.
    pub fn wrap(&self, org: &TenantKey, doc: &str) -> Vec<u8> {
        let (table, row) = Self::ad(doc);
        org.seal(&table, "content_key", &row, &self.0 .0)
    }

    /// The key of document (version) `doc`, from its wrapped form.
    pub fn unwrap(org: &TenantKey, doc: &str, wrapped: &[u8]) -> Result<Self, super::CryptoError> {
        let (table, row) = Self::ad(doc);
        let mut raw = org.open(&table, "content_key", &row, wrapped)?;
        let key = KeyBytes::from_slice(&raw).ok_or(super::CryptoError::Open);
        raw.zeroize();
        key.map(ContentKey)
    }

    /// The key sealed under the platform key (a person's export `id`).
    pub fn wrap_platform(&self, k: &super::Keyring, id: &str) -> Vec<u8> {
        k.seal_platform_field(&Self::platform_ad(id), &self.0 .0)
    }

    /// The key of a person's export `id`, from its wrapped form.
    pub fn unwrap_platform(
        k: &super::Keyring,
        id: &str,
        wrapped: &[u8],
    ) -> Result<Self, super::CryptoError> {
        let mut raw = k.open_field(&Self::platform_ad(id), wrapped)?;
        let key = KeyBytes::from_slice(&raw).ok_or(super::CryptoError::Open);
        raw.zeroize();
        key.map(ContentKey)
    }

    fn platform_ad(id: &str) -> super::FieldAd<'_> {
        super::FieldAd {
            scope: "platform",
            table: "exports",
            column: "content_key",
            row: id,
            account: None,
        }
    }

    fn stream(&self, prefix: &[u8]) -> StreamBE32<Aes256Gcm> {
        StreamBE32::from_aead(Aes256Gcm::new(&self.0 .0), prefix.into())
    }

    /// A key derived elsewhere in `crypto` (a backup's).
    pub(super) fn from_root(k: KeyBytes) -> Self {
        ContentKey(k)
    }

    /// A sealer for document (version) `doc`, and the header to store first.
    pub fn sealer(&self, doc: &str) -> (Sealer, Vec<u8>) {
        let mut prefix = [0u8; PREFIX];
        rand::rngs::OsRng.fill_bytes(&mut prefix);
        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&prefix);
        (
            Sealer {
                stream: self.stream(&prefix),
                ad: doc.as_bytes().to_vec(),
                position: 0,
                buf: Vec::with_capacity(CHUNK + TAG),
            },
            header,
        )
    }

    /// An opener for the object of document (version) `doc` whose first `HEADER` bytes are
    /// `header`.
    pub fn opener(&self, doc: &str, header: &[u8]) -> Result<Opener, ContentError> {
        if header.len() != HEADER || &header[..MAGIC.len()] != MAGIC {
            return Err(ContentError::BadHeader);
        }
        Ok(Opener {
            stream: self.stream(&header[MAGIC.len()..]),
            ad: doc.as_bytes().to_vec(),
            position: 0,
            buf: Vec::with_capacity(CHUNK + TAG),
        })
    }
}

/// AES-256-GCM from `aws-lc-rs`, behind the `aead` traits so that the `aead` crate's STREAM
/// construction drives it (the nonce layout and the last-chunk flag stay the crate's).
pub struct Aes256Gcm(LessSafeKey);

impl Aes256Gcm {
    fn new(key: &[u8; 32]) -> Self {
        // A 32-byte key is always a valid AES-256 key.
        let key = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key");
        Aes256Gcm(LessSafeKey::new(key))
    }
}

impl AeadCore for Aes256Gcm {
    type NonceSize = U12;
    type TagSize = U16;
    type CiphertextOverhead = U0;
}

impl AeadInPlace for Aes256Gcm {
    fn encrypt_in_place_detached(
        &self,
        nonce: &chacha20poly1305::aead::Nonce<Self>,
        associated_data: &[u8],
        buffer: &mut [u8],
    ) -> chacha20poly1305::aead::Result<chacha20poly1305::aead::Tag<Self>> {
        let nonce = aws_lc_rs::aead::Nonce::assume_unique_for_key((*nonce).into());
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce, Aad::from(associated_data), buffer)
            .map_err(|_| chacha20poly1305::aead::Error)?;
        Ok(GenericArray::clone_from_slice(tag.as_ref()))
    }

    fn decrypt_in_place_detached(
        &self,
        nonce: &chacha20poly1305::aead::Nonce<Self>,
        associated_data: &[u8],
        buffer: &mut [u8],
        tag: &chacha20poly1305::aead::Tag<Self>,
    ) -> chacha20poly1305::aead::Result<()> {
        let nonce = aws_lc_rs::aead::Nonce::assume_unique_for_key((*nonce).into());
        self.0
            .open_in_place_separate_tag(nonce, Aad::from(associated_data), tag, buffer)
            .map(|_| ())
            .map_err(|_| chacha20poly1305::aead::Error)
    }
}

/// Encrypts a document as it streams in: `push` what arrives, `finish` at the end.
pub struct Sealer {
    stream: StreamBE32<Aes256Gcm>,
    ad: Vec<u8>,
    position: u32,
    buf: Vec<u8>,
}

impl Sealer {
    /// The ciphertext of every chunk completed by `data` (a chunk is sealed once more data
    /// follows it: the last one is sealed by `finish`).
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<u8>, ContentError> {
        let mut out = Vec::new();
        self.push_into(data, &mut out)?;
        Ok(out)
    }

    fn seal_chunk(&mut self, last: bool) -> Result<Vec<u8>, ContentError> {
        let mut out = Vec::new();
        self.seal_chunk_into(last, &mut out)?;
        Ok(out)
    }

    /// Seals the buffered chunk in place (its tag appended) and appends it to `out`.
    fn seal_chunk_into(&mut self, last: bool, out: &mut Vec<u8>) -> Result<(), ContentError> {
        self.stream
            .encrypt_in_place(self.position, last, &self.ad, &mut self.buf)
            .map_err(|_| ContentError::TooLarge)?;
        out.extend_from_slice(&self.buf);
        self.buf.clear();
        self.position = self.position.checked_add(1).ok_or(ContentError::TooLarge)?;
        Ok(())
    }

    /// `push`, each sealed chunk handed over whole (sealed in its own buffer, in place: no copy)
    /// as it completes.
    pub fn push_chunks(
        &mut self,
        mut data: &[u8],
        out: &mut Vec<bytes::Bytes>,
    ) -> Result<(), ContentError> {
        while !data.is_empty() {
            if self.buf.len() == CHUNK {
                let mut full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + TAG));
                self.stream
                    .encrypt_in_place(self.position, false, &self.ad, &mut full)
                    .map_err(|_| ContentError::TooLarge)?;
                self.position = self.position.checked_add(1).ok_or(ContentError::TooLarge)?;
                out.push(bytes::Bytes::from(full));
            }
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// `push`, appending the sealed chunks to `out` (which the caller reuses).
    pub fn push_into(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), ContentError> {
        while !data.is_empty() {
            if self.buf.len() == CHUNK {
                self.seal_chunk_into(false, out)?;
            }
            let take = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// The last chunk's ciphertext.
    pub fn finish(mut self) -> Result<Vec<u8>, ContentError> {
        self.seal_chunk(true)
    }
}

/// Decrypts a stored object as it streams out: `push` what arrives, `finish` at the end. A
/// chunk's plaintext is released only once it authenticated; the last chunk only at `finish`,
/// when it is known to be the last.
pub struct Opener {
    stream: StreamBE32<Aes256Gcm>,
    ad: Vec<u8>,
    position: u32,
    buf: Vec<u8>,
}

impl Opener {
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<u8>, ContentError> {
        let mut out = Vec::new();
        while !data.is_empty() {
            // A full chunk followed by more bytes cannot be the last one.
            if self.buf.len() == CHUNK + TAG {
                out.extend_from_slice(&self.open_chunk(false)?);
            }
            let take = (CHUNK + TAG - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(out)
    }

    fn open_chunk(&mut self, last: bool) -> Result<Vec<u8>, ContentError> {
        let pt = self
            .stream
            .decrypt(
                self.position,
                last,
                Payload {
                    msg: &self.buf,
                    aad: &self.ad,
                },
            )
            .map_err(|_| ContentError::Corrupt(u64::from(self.position)))?;
        self.buf.clear();
        self.position = self.position.checked_add(1).ok_or(ContentError::TooLarge)?;
        Ok(pt)
    }

    /// The last chunk's plaintext; `Truncated` when the object ended before one.
    pub fn finish(mut self) -> Result<Vec<u8>, ContentError> {
        if self.buf.len() < TAG {
            return Err(ContentError::Truncated);
        }
        self.open_chunk(true)
    }
}

/// The stored size of a document of `plain` bytes.
pub fn sealed_len(plain: u64) -> u64 {
    let chunks = chunk_count(plain);
    HEADER as u64 + plain + chunks * TAG as u64
}

/// How many chunks a document of `plain` bytes has (one, empty, for an empty document).
pub fn chunk_count(plain: u64) -> u64 {
    plain.div_ceil(CHUNK as u64).max(1)
}

/// Where chunk `i` lies in the stored object: `(offset, length)`.
pub fn chunk_span(plain: u64, i: u64) -> (u64, u64) {
    let offset = HEADER as u64 + i * (CHUNK + TAG) as u64;
    let last = chunk_count(plain) - 1;
    let len = if i == last {
        plain - i * CHUNK as u64 + TAG as u64
    } else {
        (CHUNK + TAG) as u64
    };
    (offset, len)
}

impl ContentKey {
    /// Opens chunk `i` alone (a `Range` request), given the stored header and the document's
    /// plaintext size.
    pub fn open_chunk(
        &self,
        doc: &str,
        header: &[u8],
        plain: u64,
        i: u64,
        chunk: &[u8],
    ) -> Result<Vec<u8>, ContentError> {
        if header.len() != HEADER || &header[..MAGIC.len()] != MAGIC {
            return Err(ContentError::BadHeader);
        }
        let position = u32::try_from(i).map_err(|_| ContentError::TooLarge)?;
        let last = i + 1 == chunk_count(plain);
        self.stream(&header[MAGIC.len()..])
            .decrypt(
                position,
                last,
                Payload {
                    msg: chunk,
                    aad: doc.as_bytes(),
                },
            )
            .map_err(|_| ContentError::Corrupt(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org_key() -> TenantKey {
        let kr = crate::crypto::tests_keyring();
        kr.new_tenant_key("org-1").expect("key").0
    }

    /// Seals `plain` in uneven pieces, as a network would deliver it.
    fn seal(key: &ContentKey, doc: &str, plain: &[u8]) -> Vec<u8> {
        let (mut s, mut out) = key.sealer(doc);
        for piece in plain.chunks(7919) {
            out.extend(s.push(piece).expect("push"));
        }
        out.extend(s.finish().expect("finish"));
        out
    }

    fn open(key: &ContentKey, doc: &str, stored: &[u8]) -> Result<Vec<u8>, ContentError> {
        if stored.len() < HEADER {
            return Err(ContentError::BadHeader);
        }
        let mut o = key.opener(doc, &stored[..HEADER])?;
        let mut out = Vec::new();
        for piece in stored[HEADER..].chunks(5003) {
            out.extend(o.push(piece)?);
        }
        out.extend(o.finish()?);
        Ok(out)
    }

    fn bytes(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trips_at_every_boundary_and_the_size_is_predictable() {
        let key = ContentKey::random();
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 17] {
            let plain = bytes(n);
            let stored = seal(&key, "doc-1", &plain);
            assert_eq!(stored.len() as u64, sealed_len(n as u64), "{n}");
            assert_eq!(open(&key, "doc-1", &stored).expect("opens"), plain, "{n}");
            // Every chunk opens alone, as a Range request reads it.
            let mut again = Vec::new();
            for i in 0..chunk_count(n as u64) {
                let (off, len) = chunk_span(n as u64, i);
                let chunk = &stored[off as usize..(off + len) as usize];
                again.extend(
                    key.open_chunk("doc-1", &stored[..HEADER], n as u64, i, chunk)
                        .expect("chunk"),
                );
            }
            assert_eq!(again, plain, "{n} by chunks");
        }
        // The same plaintext twice: different objects (random nonce prefix).
        assert_ne!(seal(&key, "doc-1", b"same"), seal(&key, "doc-1", b"same"));
    }

    #[test]
    fn the_cipher_is_aes_256_gcm() {
        // Test cases 13 and 14 of the GCM specification (McGrew and Viega): zero key and nonce.
        let aead = Aes256Gcm::new(&[0u8; 32]);
        let nonce = GenericArray::default();
        let tag = aead
            .encrypt_in_place_detached(&nonce, b"", &mut [])
            .expect("seals");
        assert_eq!(hex::encode(tag), "530f8afbc74536b9a963b4f1c4cb738b");
        let mut block = [0u8; 16];
        let tag = aead
            .encrypt_in_place_detached(&nonce, b"", &mut block)
            .expect("seals");
        assert_eq!(hex::encode(block), "cea7403d4d606b6e074ec5d3baf39d18");
        assert_eq!(hex::encode(tag), "d0d1c8a799996bf0265b98b5d48ab919");
        aead.decrypt_in_place_detached(&nonce, b"", &mut block, &tag)
            .expect("opens");
        assert_eq!(block, [0u8; 16]);
        let mut bad = tag;
        bad[0] ^= 1;
        assert!(aead
            .decrypt_in_place_detached(&nonce, b"", &mut block, &bad)
            .is_err());
    }

    #[test]
    fn truncation_reordering_swapping_and_bit_flips_fail_loudly() {
        let key = ContentKey::random();
        let plain = bytes(3 * CHUNK + 100);
        let stored = seal(&key, "doc-1", &plain);
        let c = CHUNK + TAG;
        // Truncated: at a chunk boundary (the last chunk gone), mid-chunk, to the header alone.
        for cut in [HEADER + 3 * c, HEADER + c + 10, HEADER, stored.len() - 1] {
            assert!(open(&key, "doc-1", &stored[..cut]).is_err(), "cut at {cut}");
        }
        // Two chunks swapped.
        let mut swapped = stored.clone();
        let (a, b) = (HEADER, HEADER + c);
        let first: Vec<u8> = swapped[a..a + c].to_vec();
        let second: Vec<u8> = swapped[b..b + c].to_vec();
        swapped[a..a + c].copy_from_slice(&second);
        swapped[b..b + c].copy_from_slice(&first);
        assert_eq!(open(&key, "doc-1", &swapped), Err(ContentError::Corrupt(0)));
        // A chunk dropped from the middle.
        let mut dropped = stored[..HEADER + c].to_vec();
        dropped.extend_from_slice(&stored[HEADER + 2 * c..]);
        assert!(open(&key, "doc-1", &dropped).is_err());
        // One bit flipped anywhere: header, a chunk, a tag.
        for at in [5, HEADER + 3, HEADER + c - 1, stored.len() - 1] {
            let mut flipped = stored.clone();
            flipped[at] ^= 1;
            assert!(open(&key, "doc-1", &flipped).is_err(), "flip at {at}");
        }
        // Another document's object under this document's id, or another key.
        assert!(open(&key, "doc-2", &stored).is_err());
        assert!(open(&ContentKey::random(), "doc-1", &stored).is_err());
        // Not an object at all.
        assert_eq!(
            open(&key, "doc-1", b"plain text that was never sealed"),
            Err(ContentError::BadHeader)
        );
        // A chunk read alone at the wrong index does not open either.
        let (off, len) = chunk_span(plain.len() as u64, 1);
        let chunk = &stored[off as usize..(off + len) as usize];
        assert!(key
            .open_chunk("doc-1", &stored[..HEADER], plain.len() as u64, 2, chunk)
            .is_err());
    }

    #[test]
    fn the_content_key_is_wrapped_by_the_org_key_for_one_document() {
        let org = org_key();
        let key = ContentKey::random();
        let wrapped = key.wrap(&org, "doc-1");
        let stored = seal(&key, "doc-1", b"hello");
        let back = ContentKey::unwrap(&org, "doc-1", &wrapped).expect("unwraps");
        assert_eq!(open(&back, "doc-1", &stored).expect("opens"), b"hello");
        assert!(
            ContentKey::unwrap(&org, "doc-2", &wrapped).is_err(),
            "bound to its document"
        );
        let other = crate::crypto::tests_keyring()
            .new_tenant_key("org-2")
            .expect("key")
            .0;
        assert!(
            ContentKey::unwrap(&other, "doc-1", &wrapped).is_err(),
            "bound to its org key"
        );
    }
}
