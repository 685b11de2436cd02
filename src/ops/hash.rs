//! Hash: a digest of the data (single-part or streamed), computed in software: hashing needs no
//! key, so there is nothing for the HSM to protect.

use super::crypto::MAX_BUFFERED_STREAM;
use super::object::payload;
use super::vault::OpenStream;
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::token::mechanism::{self, digest};
use crate::ttlv::{Item, Tag, Value};

/// Handles one Hash request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let data = match payload_in.child(Tag::DATA).map(|v| &v.value) {
        Some(Value::ByteString(b)) => b.clone(),
        Some(_) => return Err(Error::InvalidField("Data".into())),
        None => Vec::new(),
    };
    let flag = |tag| {
        matches!(
            payload_in.child(tag).map(|v| &v.value),
            Some(Value::Boolean(true))
        )
    };
    let (init, fin) = (flag(Tag::INIT_INDICATOR), flag(Tag::FINAL_INDICATOR));
    let vault = ctx.vault()?;
    let hash_alg = payload_in
        .child(Tag::CRYPTOGRAPHIC_PARAMETERS)
        .and_then(|p| p.child(Tag::HASHING_ALGORITHM))
        .and_then(|h| match h.value {
            Value::Enumeration(v) => Some(v),
            _ => None,
        });
    if let Some(Value::ByteString(cv)) = payload_in.child(Tag::CORRELATION_VALUE).map(|v| &v.value)
    {
        let mut s = vault
            .take_stream(cv)
            .ok_or_else(|| Error::ItemNotFound("no stream with that Correlation Value".into()))?;
        if s.extra.len() + data.len() > MAX_BUFFERED_STREAM {
            return Err(Error::FeatureNotSupported("stream too long".into()));
        }
        s.extra.extend_from_slice(&data);
        if !fin {
            s.touched = ctx.now;
            vault.put_stream(cv.clone(), s, ctx.now)?;
            return Ok(payload(vec![Item::new(
                Tag::CORRELATION_VALUE,
                Value::ByteString(cv.clone()),
            )]));
        }
        let Some(h) = s.hash else {
            return Err(Error::InvalidField(
                "that Correlation Value is not a Hash stream".into(),
            ));
        };
        return Ok(payload(vec![Item::new(
            Tag::DATA,
            Value::ByteString(digest(h, &s.extra)),
        )]));
    }
    let alg = hash_alg.ok_or_else(|| Error::MissingData("Hashing Algorithm".into()))?;
    let h = mechanism::hash(alg).map_err(|e| Error::InvalidField(e.to_string()))?;
    if init && !fin {
        let cv = vault.token().random(16).map_err(Error::Token)?;
        vault.put_stream(
            cv.clone(),
            OpenStream {
                connection: ctx.connection,
                uid: String::new(),
                hash: Some(h),
                tag_len: 0,
                request: None,
                stream: None,
                touched: ctx.now,
                extra: data,
            },
            ctx.now,
        )?;
        return Ok(payload(vec![Item::new(
            Tag::CORRELATION_VALUE,
            Value::ByteString(cv),
        )]));
    }
    Ok(payload(vec![Item::new(
        Tag::DATA,
        Value::ByteString(digest(h, &data)),
    )]))
}
