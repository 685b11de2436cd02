//! Re-key Key Pair: a new key pair replacing an existing one (named by its private key), with
//! the old pair's attributes and Replaced/Replacement Links.

use super::attributes;
use super::create_key_pair::{self, link_change};
use super::object;
use super::re_key::inherited;
use super::{Context, Outcome};
use crate::kmip::Error;
use crate::ttlv::tables::enums::{LinkType, ObjectType};
use crate::ttlv::{Item, Tag, Value};

/// Handles one Re-key Key Pair request payload.
pub fn handle(ctx: &mut Context<'_>, payload_in: Item) -> Outcome {
    let uid = match payload_in
        .child(Tag::PRIVATE_KEY_UNIQUE_IDENTIFIER)
        .map(|v| &v.value)
    {
        Some(Value::TextString(s)) => s.clone(),
        Some(_) => return Err(Error::InvalidField("Private Key Unique Identifier".into())),
        None => ctx
            .id_placeholder
            .clone()
            .ok_or_else(|| Error::MissingData("Private Key Unique Identifier".into()))?,
    };
    let old_priv = object::load(ctx, &uid)?;
    if ObjectType::from_u32(old_priv.object_type) != ObjectType::PrivateKey {
        return Err(Error::InvalidField(
            "Re-key Key Pair names a private key".into(),
        ));
    }
    let old_pub_uid = attributes::link_of(&old_priv, LinkType::PublicKeyLink);
    let offset = match payload_in.child(Tag::OFFSET).map(|v| &v.value) {
        Some(Value::Interval(o)) => Some(i64::from(*o)),
        _ => None,
    };
    let common = attributes::parse_all(payload_in.child(Tag::COMMON_TEMPLATE_ATTRIBUTE))?;
    let private = attributes::parse_all(payload_in.child(Tag::PRIVATE_KEY_TEMPLATE_ATTRIBUTE))?;
    let public = attributes::parse_all(payload_in.child(Tag::PUBLIC_KEY_TEMPLATE_ATTRIBUTE))?;
    let mut priv_attrs = inherited(ctx, &old_priv, offset, &private);
    priv_attrs.retain(|a| !common.iter().any(|c| c.name == a.name));
    let pub_attrs = match &old_pub_uid {
        Some(p) => {
            let old_pub = object::load(ctx, p)?;
            let mut v = inherited(ctx, &old_pub, offset, &public);
            v.retain(|a| !common.iter().any(|c| c.name == a.name));
            v
        }
        None => public,
    };
    let (new_priv, new_pub) = create_key_pair::create_pair(ctx, &common, &priv_attrs, &pub_attrs)?;
    let mut links = vec![
        link_change(&uid, LinkType::ReplacementObjectLink, &new_priv),
        link_change(&new_priv, LinkType::ReplacedObjectLink, &uid),
    ];
    if let Some(p) = &old_pub_uid {
        links.push(link_change(p, LinkType::ReplacementObjectLink, &new_pub));
        links.push(link_change(&new_pub, LinkType::ReplacedObjectLink, p));
    }
    object::commit(ctx, links)?;
    Ok(create_key_pair::payload_of(&new_priv, &new_pub))
}
