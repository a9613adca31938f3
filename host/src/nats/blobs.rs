//! Bytes that do not fit in a message: large message bodies and components, kept in Object
//! Store buckets under their sha256, and checked against it when read back.

use async_nats::HeaderMap;
use async_nats::jetstream::object_store::ObjectStore;
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::{INLINE_MAX, NatsError};
use crate::runtime::digest;

/// The header naming a message's body stored in the blob bucket.
pub const BLOB_HEADER: &str = "Sandmap-Blob";

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
) -> Result<Bytes, String> {
    let Some(name) = headers.and_then(|h| h.get(BLOB_HEADER)) else {
        return Ok(payload.clone());
    };
    fetch(bucket, name.as_str(), max).await.map(Bytes::from)
}

/// Store `bytes` under `name` unless an object of that name and size is there already.
pub async fn put_once(bucket: &ObjectStore, name: &str, bytes: &[u8]) -> Result<(), NatsError> {
    if let Ok(info) = bucket.info(name).await
        && info.size == bytes.len()
        && !info.deleted
    {
        return Ok(());
    }
    let mut reader = bytes;
    bucket.put(name, &mut reader).await.map_err(|e| NatsError::js(format!("cannot store object {name:.12}"), e))?;
    Ok(())
}

/// The bytes stored under `name` (a sha256, hex), at most `max` of them, checked against it.
pub async fn fetch(bucket: &ObjectStore, name: &str, max: usize) -> Result<Vec<u8>, String> {
    if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{name:?} is not a sha256 digest"));
    }
    let info = bucket.info(name).await.map_err(|e| format!("object sha256:{name:.12} is not in the bucket: {e}"))?;
    if info.size > max {
        return Err(format!("object sha256:{name:.12} is {} bytes, more than the {max} allowed", info.size));
    }
    let mut object = bucket.get(name).await.map_err(|e| format!("cannot read object sha256:{name:.12}: {e}"))?;
    let mut bytes = Vec::with_capacity(info.size);
    // `take` bounds what a lying object (more chunks than its info says) can make us hold.
    let mut limited = (&mut object).take(max as u64 + 1);
    limited.read_to_end(&mut bytes).await.map_err(|e| format!("cannot read object sha256:{name:.12}: {e}"))?;
    if bytes.len() > max {
        return Err(format!("object sha256:{name:.12} is more than the {max} bytes allowed"));
    }
    let found = digest(&bytes);
    if found != name {
        return Err(format!("object sha256:{name:.12} holds bytes of sha256:{found:.12}; refused"));
    }
    Ok(bytes)
}
