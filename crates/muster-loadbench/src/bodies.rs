//! Request bodies and query strings shaped like Microsoft Entra ID's
//! provisioning traffic.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::extension::{Extension, EXTENSION_URN};

/// Core User schema URN.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// Core Group schema URN.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// Enterprise User extension URN.
pub const ENTERPRISE_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// PatchOp message URN.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Given names the generated users draw from.
const GIVEN: [&str; 16] = [
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Dennis",
    "Radia", "Linus", "Hedy", "Tim", "Sophie", "John",
];
/// Family names the generated users draw from.
const FAMILY: [&str; 16] = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Torvalds",
    "Lamarr",
    "Berners-Lee",
    "Wilson",
    "Backus",
];
/// Departments (enterprise extension).
const DEPARTMENTS: [&str; 8] = [
    "Customer Care",
    "Sales",
    "Billing",
    "Technical Support",
    "Retention",
    "Collections",
    "Onboarding",
    "Quality",
];
/// Job titles.
const TITLES: [&str; 6] = [
    "Agent",
    "Senior Agent",
    "Team Lead",
    "Supervisor",
    "Workforce Analyst",
    "Quality Coach",
];
/// Cities for addresses.
const CITIES: [&str; 6] = ["Seattle", "Dublin", "Manila", "Austin", "Krakow", "Pune"];

/// An element of `list`, cycling by `i`.
fn nth<'a>(list: &[&'a str], i: usize) -> &'a str {
    list.get(i % list.len().max(1)).copied().unwrap_or("")
}

/// The userName of generated user `i` in run `tag` (unique per run, so a
/// run can target a server that already holds data).
pub fn user_name(tag: &str, i: usize) -> String {
    format!("agent{i:07}.{tag}@contoso.example")
}

/// The POST /Users body of generated user `i`: what Entra ID sends for a
/// typical member (core attributes, one work e-mail, a phone, an address,
/// and the enterprise extension), plus the values of the benchmark's custom
/// `extension` when given.
pub fn user_body(tag: &str, i: usize, extension: Option<Extension>) -> Bytes {
    let given = nth(&GIVEN, i);
    let family = nth(&FAMILY, i / GIVEN.len());
    let user_name = user_name(tag, i);
    let mut body = json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_SCHEMA],
        "externalId": format!("{tag}-{i:07}"),
        "userName": user_name,
        "active": true,
        "displayName": format!("{given} {family} {i}"),
        "name": {
            "formatted": format!("{given} {family}"),
            "familyName": family,
            "givenName": given,
        },
        "emails": [{"primary": true, "type": "work", "value": user_name}],
        "phoneNumbers": [{"type": "work", "value": format!("+1 555 {:04}", i % 10_000)}],
        "addresses": [{
            "type": "work",
            "locality": nth(&CITIES, i),
            "country": "US",
            "formatted": format!("{} Contact Way, {}", i % 1000 + 1, nth(&CITIES, i)),
        }],
        "title": nth(&TITLES, i),
        "preferredLanguage": "en-US",
        ENTERPRISE_SCHEMA: {
            "department": nth(&DEPARTMENTS, i),
            "costCenter": format!("CC-{:04}", i % 97),
            "employeeNumber": format!("{i}"),
            "organization": "Contoso",
        },
    });
    if let (Some(extension), Some(object)) = (extension, body.as_object_mut()) {
        if let Some(Value::Array(schemas)) = object.get_mut("schemas") {
            schemas.push(Value::String(EXTENSION_URN.to_owned()));
        }
        object.insert(EXTENSION_URN.to_owned(), extension.values(tag, i));
    }
    Bytes::from(body.to_string())
}

/// An Entra-style PATCH of a user (variant `i`): `Replace` operations on
/// `title`, `displayName` and the enterprise `department`.
pub fn user_patch_body(i: usize) -> Bytes {
    let body = json!({
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "Replace", "path": "title", "value": nth(&TITLES, i + 1)},
            {"op": "Replace", "path": "displayName",
             "value": format!("{} {} (updated {i})", nth(&GIVEN, i), nth(&FAMILY, i))},
            {"op": "Replace", "path": format!("{ENTERPRISE_SCHEMA}:department"),
             "value": nth(&DEPARTMENTS, i + 3)},
        ],
    });
    Bytes::from(body.to_string())
}

/// The POST /Groups body of the benchmark's group.
pub fn group_body(tag: &str) -> Bytes {
    let body = json!({
        "schemas": [GROUP_SCHEMA],
        "displayName": format!("Contact center agents {tag}"),
        "externalId": format!("{tag}-group"),
    });
    Bytes::from(body.to_string())
}

/// A PATCH adding `ids` to a group's members (Entra's shape).
pub fn add_members_body<'a>(ids: impl IntoIterator<Item = &'a str>) -> Bytes {
    let members: Vec<Value> = ids.into_iter().map(|id| json!({"value": id})).collect();
    let body = json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "members", "value": members}],
    });
    Bytes::from(body.to_string())
}

/// The query string of `GET /Users?filter=userName eq "<name>"`.
pub fn user_name_filter_query(user_name: &str) -> String {
    let filter = format!("userName eq \"{user_name}\"");
    format!("?filter={}", percent_encode(&filter))
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_body_is_entra_like_json() {
        let body: Value = serde_json::from_slice(&user_body("t1", 42, None)).unwrap();
        assert_eq!(body["userName"], "agent0000042.t1@contoso.example");
        assert_eq!(body["active"], true);
        assert_eq!(body["emails"][0]["value"], body["userName"]);
        assert!(body[ENTERPRISE_SCHEMA]["department"].is_string());
        assert!(body[ENTERPRISE_SCHEMA]["costCenter"].is_string());
        assert!(body.get(EXTENSION_URN).is_none());
        assert_eq!(body["schemas"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn user_body_carries_custom_values_when_asked() {
        let extension = Extension::new(20);
        let plain: Value = serde_json::from_slice(&user_body("t1", 42, None)).unwrap();
        let custom: Value = serde_json::from_slice(&user_body("t1", 42, extension)).unwrap();
        assert_eq!(custom["schemas"][2], EXTENSION_URN);
        assert_eq!(custom[EXTENSION_URN].as_object().unwrap().len(), 20);
        // Everything else is the same body.
        let mut stripped = custom.clone();
        let object = stripped.as_object_mut().unwrap();
        object.remove(EXTENSION_URN);
        object["schemas"].as_array_mut().unwrap().pop();
        assert_eq!(stripped, plain);
    }

    #[test]
    fn filter_is_percent_encoded() {
        assert_eq!(
            user_name_filter_query("a.b@c.d"),
            "?filter=userName%20eq%20%22a.b%40c.d%22"
        );
    }

    #[test]
    fn members_body_lists_values() {
        let body: Value = serde_json::from_slice(&add_members_body(["x", "y"])).unwrap();
        assert_eq!(body["Operations"][0]["value"][1]["value"], "y");
        assert_eq!(body["Operations"][0]["path"], "members");
    }
}
