//! Each kind's mappings when a document gives none: for `scim`, the core
//! and enterprise attributes as they are; for `csv`, the columns an import
//! usually needs.

use crate::document::{MappingSpec, TargetKind};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn spec(target: &str, expression: &str) -> MappingSpec {
    MappingSpec {
        target: target.to_owned(),
        expression: expression.to_owned(),
    }
}

/// The user mappings of a kind.
pub fn default_user_mappings(kind: TargetKind) -> Vec<MappingSpec> {
    match kind {
        TargetKind::Scim => {
            let mut specs: Vec<MappingSpec> = [
                "userName",
                "externalId",
                "active",
                "displayName",
                "nickName",
                "title",
                "userType",
                "preferredLanguage",
                "locale",
                "timezone",
                "name.givenName",
                "name.familyName",
                "name.middleName",
                "name.formatted",
                "emails",
                "phoneNumbers",
                "addresses",
            ]
            .iter()
            .map(|path| spec(path, path))
            .collect();
            for attribute in [
                "employeeNumber",
                "costCenter",
                "organization",
                "division",
                "department",
            ] {
                let path = format!("{ENTERPRISE}:{attribute}");
                specs.push(spec(&path, &path));
            }
            specs
        }
        TargetKind::GenesysCloud => {
            let mut specs: Vec<MappingSpec> = [
                ("userName", "userName"),
                ("externalId", "externalId"),
                ("active", "active"),
                (
                    "displayName",
                    "Coalesce([displayName], [name.formatted], [userName])",
                ),
                ("title", "title"),
                ("emails[type eq \"work\"].value", "userName"),
            ]
            .iter()
            .map(|(target, expression)| spec(target, expression))
            .collect();
            for attribute in ["department", "employeeNumber"] {
                let path = format!("{ENTERPRISE}:{attribute}");
                specs.push(spec(&path, &path));
            }
            specs
        }
        TargetKind::NiceCxone => [
            ("userName", "userName"),
            ("externalId", "externalId"),
            ("active", "active"),
            ("displayName", "displayName"),
            ("name.givenName", "name.givenName"),
            ("name.familyName", "name.familyName"),
            (
                "emails[type eq \"work\"].value",
                "Coalesce(Item([emails.value], 1), [userName])",
            ),
        ]
        .iter()
        .map(|(target, expression)| spec(target, expression))
        .collect(),
        // Five9's fields are fixed (see muster-sync's five9 module).
        TargetKind::Five9 => Vec::new(),
        TargetKind::Csv => [
            ("id", "id"),
            ("userName", "userName"),
            ("externalId", "externalId"),
            ("active", "active"),
            ("givenName", "name.givenName"),
            ("familyName", "name.familyName"),
            ("email", "emails.value"),
            ("title", "title"),
            ("department", &format!("{ENTERPRISE}:department")),
        ]
        .iter()
        .map(|(column, path)| spec(column, path))
        .collect(),
    }
}

/// The group mappings (members are delivered apart).
pub fn default_group_mappings() -> Vec<MappingSpec> {
    vec![
        spec("displayName", "displayName"),
        spec("externalId", "externalId"),
    ]
}
