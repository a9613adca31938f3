//! Bytes that do not fit in a message: large message bodies and components, kept in Object
//! Store buckets under their sha256, and checked against it when read back.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::object_store::{ObjectInfo, ObjectMetadata, ObjectStore};
use base64::Engine;
use bytes::Bytes;
use sha2::Digest;
use tokio::io::AsyncReadExt;

use super::{INLINE_MAX, NatsError};
use crate::runtime::digest;

/// The header naming a message's body stored in the blob bucket.
pub const BLOB_HEADER: &str = "Sandmap-Blob";
/// How long one read of an object may take before it counts as failed (a chunk that expired
/// before its metadata would otherwise be waited for forever).
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The size of an object's chunks (each one message).
const CHUNK_BYTES: usize = 512 << 10;
/// What is reserved up front for an object, whatever size its metadata claims.
const PREALLOCATE_MAX: usize = 16 << 20;

/// Why an object could not be read.
#[derive(Debug, Clone)]
pub enum FetchError {
    /// It is missing, too large, a link, or its bytes do not match its name: reading it again
    /// will not help.
    Refused(String),
    /// The server did not answer in time or failed: it may work later.
    Transient(String),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(why) | Self::Transient(why) => f.write_str(why),
        }
    }
}

/// `body` as it travels: inline if small enough, else stored in `bucket` and named by a header.
pub async fn outgoing(bucket: &ObjectStore, headers: &mut HeaderMap, body: Vec<u8>) -> Result<Bytes, NatsError> {
    if body.len() <= INLINE_MAX {
        return Ok(Bytes::from(body));
    }
    let name = digest(&body);
    put_once(bucket, &name, &body).await?;
    headers.insert(BLOB_HEADER, name.as_str());
    Ok(Bytes::new())
}

/// A message's body: inline, or read from `bucket` by the digest its header names (at most
/// `max` bytes, and only if the bytes match the digest).
pub async fn incoming(
    bucket: &ObjectStore,
    headers: Option<&HeaderMap>,
    payload: &Bytes,
    max: usize,
    patience: Duration,
) -> Result<Bytes, FetchError> {
    let Some(name) = headers.and_then(|h| h.get(BLOB_HEADER)) else {
        return Ok(payload.clone());
    };
    fetch_patiently(bucket, name.as_str(), max, patience).await.map(Bytes::from)
}

/// The Object Store's notation of the sha256 of `bytes`.
fn store_digest(bytes: &[u8]) -> String {
    format!("SHA-256={}", base64::engine::general_purpose::URL_SAFE.encode(sha2::Sha256::digest(bytes)))
}

fn is_sound(info: &ObjectInfo, bytes: &[u8]) -> bool {
    !info.deleted
        && info.size == bytes.len()
        && info.options.as_ref().is_none_or(|o| o.link.is_none())
        && info.digest.as_deref() == Some(store_digest(bytes).as_str())
}

/// Store `bytes` under `name` unless that very object is there already (same digest, not a
/// link): an object planted under the name with other bytes is replaced.
pub async fn put_once(bucket: &ObjectStore, name: &str, bytes: &[u8]) -> Result<(), NatsError> {
    if let Ok(info) = bucket.info(name).await
        && is_sound(&info, bytes)
    {
        return Ok(());
    }
    let mut reader = bytes;
    // Chunks of half the max payload rather than the default 128 KiB: a quarter of the
    // messages, so a worker's first fetch of a 20 MB component is that much faster.
    let meta = ObjectMetadata { name: name.to_owned(), chunk_size: Some(CHUNK_BYTES), ..Default::default() };
    bucket.put(meta, &mut reader).await.map_err(|e| NatsError::js(format!("cannot store object {name:.12}"), e))?;
    Ok(())
}

/// The bytes stored under `name` (a sha256, hex), at most `max` of them, checked against it.
pub async fn fetch(bucket: &ObjectStore, name: &str, max: usize) -> Result<Vec<u8>, FetchError> {
    use async_nats::jetstream::object_store::InfoErrorKind;
    if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(FetchError::Refused(format!("{name:?} is not a sha256 digest")));
    }
    let short = &name[..12];
    let info = match tokio::time::timeout(READ_TIMEOUT, bucket.info(name)).await {
        Err(_) => return Err(FetchError::Transient(format!("object sha256:{short}: the server did not answer"))),
        Ok(Err(e)) if e.kind() == InfoErrorKind::NotFound => {
            return Err(FetchError::Refused(format!("object sha256:{short} is not in the bucket")));
        }
        Ok(Err(e)) => return Err(FetchError::Transient(format!("object sha256:{short}: {e}"))),
        Ok(Ok(info)) => info,
    };
    if info.options.as_ref().is_some_and(|o| o.link.is_some()) {
        return Err(FetchError::Refused(format!("object sha256:{short} is a link; refused")));
    }
    if info.size > max {
        return Err(FetchError::Refused(format!(
            "object sha256:{short} is {} bytes, more than the {max} allowed",
            info.size
        )));
    }
    let read = async {
        let mut object = bucket.get(name).await.map_err(|e| format!("cannot read object sha256:{short}: {e}"))?;
        let mut bytes = Vec::with_capacity(info.size.min(PREALLOCATE_MAX));
        // `take` bounds what a lying object (more chunks than its info says) can make us hold.
        let mut limited = (&mut object).take(max as u64 + 1);
        limited.read_to_end(&mut bytes).await.map_err(|e| format!("cannot read object sha256:{short}: {e}"))?;
        Ok::<_, String>(bytes)
    };
    let bytes = match tokio::time::timeout(READ_TIMEOUT, read).await {
        Err(_) => return Err(FetchError::Transient(format!("object sha256:{short}: reading it timed out"))),
        Ok(Err(e)) => return Err(FetchError::Transient(e)),
        Ok(Ok(bytes)) => bytes,
    };
    if bytes.len() > max {
        return Err(FetchError::Refused(format!("object sha256:{short} is more than the {max} bytes allowed")));
    }
    let found = digest(&bytes);
    if found != name {
        return Err(FetchError::Refused(format!("object sha256:{short} holds bytes of sha256:{found:.12}; refused")));
    }
    Ok(bytes)
}

/// [`fetch`], trying again while the failure may pass (a server restarting), for up to
/// `patience`.
pub async fn fetch_patiently(
    bucket: &ObjectStore,
    name: &str,
    max: usize,
    patience: Duration,
) -> Result<Vec<u8>, FetchError> {
    let started = std::time::Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        match fetch(bucket, name, max).await {
            Err(FetchError::Transient(why)) if started.elapsed() < patience => {
                tracing::warn!("{why}; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_digest_is_the_object_stores_notation() {
        // sha256("") in URL-safe base64, as async-nats writes it into ObjectInfo.digest.
        assert_eq!(store_digest(b""), "SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=");
    }
}
