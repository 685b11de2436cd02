//! Who may do what to an object: the client that made an object owns it, and the object's
//! Operation Policy Name (KMIP 1.x operation policies) says what other clients may do. Built-in
//! policies: `default` (KMIP 1.0's default: others may read certificates, public keys and
//! templates, nothing else) and `public` (others may also find, read and use any object, but
//! not change it); site policies come from `p6kmip_policies.conf`.

use super::Context;
use super::attributes;
use crate::config::policies::{BUILT_IN, Permission, SitePolicy};
use crate::kmip::Error;
use crate::store::StoredObject;
use crate::ttlv::Value;
use crate::ttlv::tables::enums::{ObjectType as T, Operation as Op};

/// The policy an object follows when it names none.
pub const DEFAULT_POLICY: &str = "default";

fn reads(op: Op) -> bool {
    matches!(
        op,
        Op::Locate | Op::Check | Op::Get | Op::GetAttributes | Op::GetAttributeList
    )
}

fn uses(op: Op) -> bool {
    matches!(
        op,
        Op::Encrypt
            | Op::Decrypt
            | Op::Sign
            | Op::SignatureVerify
            | Op::MAC
            | Op::MACVerify
            | Op::ObtainLease
            | Op::GetUsageAllocation
    )
}

/// What policy `name` allows for `operation` on an object of `object_type`; None when there is
/// no such policy.
pub fn permission(
    site: &[SitePolicy],
    name: &str,
    object_type: u32,
    operation: Op,
) -> Option<Permission> {
    let t = T::from_u32(object_type);
    match name {
        "default" => Some(
            if reads(operation) && matches!(t, T::Certificate | T::PublicKey | T::Template) {
                Permission::AllowAll
            } else {
                Permission::AllowOwner
            },
        ),
        "public" => Some(if reads(operation) || uses(operation) {
            Permission::AllowAll
        } else {
            Permission::AllowOwner
        }),
        other => site
            .iter()
            .find(|p| p.name == other)
            .map(|p| p.permission(object_type, operation.to_u32())),
    }
}

/// Whether `name` is a policy this gateway knows.
pub fn known_policy(site: &[SitePolicy], name: &str) -> bool {
    BUILT_IN.contains(&name) || site.iter().any(|p| p.name == name)
}

fn policy_of(obj: &StoredObject) -> String {
    match attributes::first(obj, "Operation Policy Name")
        .as_ref()
        .map(|v| &v.value)
    {
        Some(Value::TextString(s)) => s.clone(),
        _ => DEFAULT_POLICY.to_string(),
    }
}

/// Whether the caller may perform `operation` on `obj`. The owner may do what the policy
/// allows the owner; others what it allows all. An object whose policy has disappeared from
/// the site file is left to its owner.
pub fn may(ctx: &Context<'_>, obj: &StoredObject, operation: Op) -> bool {
    let owner = obj.owner.as_deref() == ctx.identity;
    match permission(ctx.policies, &policy_of(obj), obj.object_type, operation) {
        Some(Permission::AllowAll) => true,
        Some(Permission::AllowOwner) | None => owner,
        Some(Permission::DisallowAll) => false,
    }
}

/// Refuses the request's operation on `obj` unless the caller may perform it.
pub fn check(ctx: &Context<'_>, obj: &StoredObject) -> Result<(), Error> {
    if may(ctx, obj, ctx.operation) {
        return Ok(());
    }
    Err(Error::PermissionDenied(format!(
        "{} may not {} object {}",
        ctx.identity.unwrap_or("an anonymous client"),
        super::operation_name(ctx.operation),
        obj.uid
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::policies::PolicyRule;

    #[test]
    fn built_in_policies_keep_secrets_to_their_owner() {
        let sym = T::SymmetricKey.to_u32();
        let cert = T::Certificate.to_u32();
        assert_eq!(
            permission(&[], "default", sym, Op::Get),
            Some(Permission::AllowOwner)
        );
        assert_eq!(
            permission(&[], "default", cert, Op::Get),
            Some(Permission::AllowAll)
        );
        assert_eq!(
            permission(&[], "default", cert, Op::Destroy),
            Some(Permission::AllowOwner)
        );
        assert_eq!(
            permission(&[], "public", sym, Op::Encrypt),
            Some(Permission::AllowAll)
        );
        assert_eq!(
            permission(&[], "public", sym, Op::Destroy),
            Some(Permission::AllowOwner)
        );
        assert_eq!(permission(&[], "nonesuch", sym, Op::Get), None);
        let site = [SitePolicy {
            name: "frozen".into(),
            rules: vec![PolicyRule {
                object_type: None,
                operation: None,
                permission: Permission::DisallowAll,
            }],
        }];
        assert_eq!(
            permission(&site, "frozen", sym, Op::Get),
            Some(Permission::DisallowAll)
        );
        assert!(known_policy(&site, "frozen") && known_policy(&[], "public"));
    }
}
