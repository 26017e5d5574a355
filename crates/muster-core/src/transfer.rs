//! Moving a tenant's users and groups out of one Muster and into another
//! (`muster export`, `muster import`): JSON Lines of SCIM resources, users
//! before groups so members resolve on the way in. The way to move an
//! SQLite deployment onto another store.
//!
//! An exported line is the stored resource with its `id`, `meta`, computed
//! `groups` and `members`, and the undeclared values the tenant captured,
//! put back where the client sent them. What is never returned (the
//! password hash, `returned: never` attributes) is not exported.

use muster_scim::projection::remove_never_returned;
use muster_scim::ScimError;
use serde_json::Value;

use crate::resources::Imported;
use crate::{Error, Session};

/// The core schema URNs that tell a line's resource type.
const TYPES: [(&str, &str); 2] = [
    ("urn:ietf:params:scim:schemas:core:2.0:User", "User"),
    ("urn:ietf:params:scim:schemas:core:2.0:Group", "Group"),
];

/// Resources read per page while exporting (each page after the first also
/// counts every match: fewer, larger pages keep a million-user export linear).
const EXPORT_PAGE: u64 = 5_000;

/// Longest line `muster import` takes (a group with many members).
pub const MAX_LINE: usize = 16 * 1024 * 1024;

impl Session<'_> {
    /// Every User, then every Group, of the tenant as export lines, handed
    /// to `emit` one at a time in a stable order; returns how many.
    pub async fn export(
        &self,
        mut emit: impl FnMut(Value) -> Result<(), Error>,
    ) -> Result<u64, Error> {
        let mut count = 0;
        for (_, resource_type) in TYPES {
            let rt = self.type_named(resource_type)?;
            muster_store::each_page(
                self.service().store(),
                self.tenant(),
                self.registry(),
                resource_type,
                (EXPORT_PAGE, true),
                |page| {
                    for stored in page {
                        let mut resource = stored.resource;
                        remove_never_returned(self.registry(), &rt, &mut resource);
                        if let Some(fields) = resource.as_object_mut() {
                            for (key, value) in stored.unmapped {
                                fields.entry(key).or_insert(value);
                            }
                        }
                        emit(resource)?;
                        count += 1;
                    }
                    Ok::<_, Error>(())
                },
            )
            .await?;
        }
        Ok(count)
    }

    fn type_named(&self, name: &str) -> Result<muster_scim::ResourceType, Error> {
        self.registry()
            .resource_type(name)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("no resource type '{name}'")))
    }

    /// Imports one export line (or any SCIM User or Group body): see
    /// [`Session::import`]. The resource type comes from `schemas`.
    pub async fn import_line(&self, line: &str) -> Result<Imported, Error> {
        let body: Value = serde_json::from_str(line).map_err(|error| {
            Error::Scim(ScimError::invalid_value(format!(
                "the line is not a JSON object: {error}"
            )))
        })?;
        // Attribute names are case-insensitive (RFC 7643 section 2.1).
        let schemas: Vec<&str> = body
            .as_object()
            .into_iter()
            .flatten()
            .find(|(key, _)| key.eq_ignore_ascii_case("schemas"))
            .and_then(|(_, schemas)| schemas.as_array())
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let Some((_, resource_type)) = TYPES
            .iter()
            .find(|(urn, _)| schemas.iter().any(|given| given.eq_ignore_ascii_case(urn)))
        else {
            return Err(Error::Scim(ScimError::invalid_value(format!(
                "schemas: expected {} or {}",
                TYPES[0].0, TYPES[1].0
            ))));
        };
        let rt = self.type_named(resource_type)?;
        self.import(&rt, body).await
    }
}
