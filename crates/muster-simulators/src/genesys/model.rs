//! The simulated organisation: divisions, roles, skills, languages, management units,
//! licenses, groups and users, plus the small helpers every endpoint shares.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// A user's lifecycle state, as the Platform API names it (`state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserState {
    /// Active: can log in; listed by an unfiltered SCIM GET.
    Active,
    /// Inactive (`active=false` over SCIM): kept, locked out, license freed.
    Inactive,
    /// Soft-deleted (SCIM DELETE): invisible to SCIM, found by `POST /api/v2/users/search`
    /// with `state=deleted`, restorable with `PATCH /api/v2/users/{id}`.
    Deleted,
}

impl UserState {
    /// The Platform API spelling: `active`, `inactive`, `deleted`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Deleted => "deleted",
        }
    }
}

/// A role granted in a division (a grant is role + division).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    /// The role id.
    pub role_id: String,
    /// The division id.
    pub division_id: String,
}

/// A grant a user holds through a group it belongs to (its `subjectId` is the group id).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InheritedGrant {
    /// The group that carries the grant.
    pub group_id: String,
    /// The role id.
    pub role_id: String,
    /// The division id.
    pub division_id: String,
}

/// A user's grants, own and inherited apart (see [`crate::genesys::GenesysSim::grants_of`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grants {
    /// Grants made to the user itself (`subjectId == userId`), sorted.
    pub own: Vec<Grant>,
    /// Grants inherited from the user's groups, sorted.
    pub inherited: Vec<InheritedGrant>,
}

/// A skill or language held by a user, with its proficiency (0.0 to 5.0).
#[derive(Clone, Debug, PartialEq)]
pub struct Proficiency {
    /// The skill or language id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Proficiency, 0.0 to 5.0.
    pub proficiency: f64,
}

/// A snapshot of a simulated user, for assertions.
#[derive(Clone, Debug, PartialEq)]
pub struct SimUser {
    /// Genesys user id.
    pub id: String,
    /// `userName`: the Genesys email, unique (case-insensitive) across every state.
    pub user_name: String,
    /// `displayName`.
    pub display_name: String,
    /// Lifecycle state.
    pub state: UserState,
    /// `meta.version` / Platform `version`; bumped on every change.
    pub version: u64,
    /// SCIM `externalId`.
    pub external_id: Option<String>,
    /// Genesys extension `externalIds` given by the client (`(authority, value)`).
    pub external_ids: Vec<(String, String)>,
    /// `title`.
    pub title: Option<String>,
    /// `emails[type eq "work"]` (the `other` email is the userName, read-only).
    pub work_email: Option<String>,
    /// Phone numbers, `(type, value)`.
    pub phone_numbers: Vec<(String, String)>,
    /// Division id (a user is in exactly one division).
    pub division_id: String,
    /// Manager's Genesys user id.
    pub manager_id: Option<String>,
    /// Enterprise `department`.
    pub department: Option<String>,
    /// Enterprise `employeeNumber`.
    pub employee_number: Option<String>,
    /// Enterprise `dateHire` (YYYY-MM-DD).
    pub date_hire: Option<String>,
    /// Own grants.
    pub grants: BTreeSet<Grant>,
    /// Skills: skill id → proficiency.
    pub skills: BTreeMap<String, f64>,
    /// Languages: language id → proficiency.
    pub languages: BTreeMap<String, f64>,
    /// WFM management unit id.
    pub management_unit: Option<String>,
    /// License ids.
    pub licenses: BTreeSet<String>,
    /// Last modification, RFC 3339.
    pub last_modified: String,
}

impl SimUser {
    /// A new active user in `division_id`.
    pub(crate) fn new(user_name: &str, display_name: &str, division_id: &str) -> Self {
        Self {
            id: new_id(),
            user_name: user_name.to_string(),
            display_name: display_name.to_string(),
            state: UserState::Active,
            version: 1,
            external_id: None,
            external_ids: Vec::new(),
            title: None,
            work_email: None,
            phone_numbers: Vec::new(),
            division_id: division_id.to_string(),
            manager_id: None,
            department: None,
            employee_number: None,
            date_hire: None,
            grants: BTreeSet::new(),
            skills: BTreeMap::new(),
            languages: BTreeMap::new(),
            management_unit: None,
            licenses: BTreeSet::new(),
            last_modified: now_rfc3339(),
        }
    }

    /// Bump the version and the modification time.
    pub(crate) fn touch(&mut self) {
        self.version += 1;
        self.last_modified = now_rfc3339();
    }
}

/// A division.
#[derive(Clone, Debug)]
pub(crate) struct Division {
    pub id: String,
    pub name: String,
    pub home: bool,
}

/// A role; `available_at` models the authorization cache lag of a new role.
#[derive(Clone, Debug)]
pub(crate) struct Role {
    pub id: String,
    pub name: String,
    pub available_at: Instant,
}

/// A named thing with an id (routing skill, routing language).
#[derive(Clone, Debug)]
pub(crate) struct Named {
    pub id: String,
    pub name: String,
}

/// A WFM management unit.
#[derive(Clone, Debug)]
pub(crate) struct ManagementUnit {
    pub id: String,
    pub name: String,
    pub division_id: String,
    pub business_unit_id: String,
    pub agent_limit: Option<usize>,
}

/// A group (pre-existing only).
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub id: String,
    pub display_name: String,
    pub members: BTreeSet<String>,
    pub grants: BTreeSet<Grant>,
    pub version: u64,
    pub last_modified: String,
}

/// The whole organisation.
#[derive(Debug, Default)]
pub(crate) struct Org {
    pub divisions: Vec<Division>,
    pub roles: Vec<Role>,
    pub skills: Vec<Named>,
    pub languages: Vec<Named>,
    pub management_units: Vec<ManagementUnit>,
    pub licenses: Vec<String>,
    pub groups: Vec<Group>,
    pub users: Vec<SimUser>,
    pub groups_created: usize,
    pub max_page_size_seen: usize,
    /// Users whose next SCIM write without `If-Match` loses a race with
    /// another writer (see `GenesysSim::race_next_write`).
    pub racing: BTreeSet<String>,
}

impl Org {
    pub fn division(&self, id: &str) -> Option<&Division> {
        self.divisions.iter().find(|d| d.id == id)
    }
    pub fn division_by_name(&self, name: &str) -> Option<&Division> {
        self.divisions
            .iter()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }
    pub fn home_division(&self) -> Option<&Division> {
        self.divisions.iter().find(|d| d.home)
    }
    pub fn role(&self, id: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.id == id)
    }
    pub fn role_by_name(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }
    pub fn skill(&self, id: &str) -> Option<&Named> {
        self.skills.iter().find(|r| r.id == id)
    }
    pub fn language(&self, id: &str) -> Option<&Named> {
        self.languages.iter().find(|r| r.id == id)
    }
    pub fn user(&self, id: &str) -> Option<&SimUser> {
        self.users.iter().find(|u| u.id == id)
    }
    pub fn user_mut(&mut self, id: &str) -> Option<&mut SimUser> {
        self.users.iter_mut().find(|u| u.id == id)
    }
    pub fn user_by_name(&self, user_name: &str) -> Option<&SimUser> {
        self.users
            .iter()
            .find(|u| u.user_name.eq_ignore_ascii_case(user_name))
    }
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }
    /// Groups `user_id` belongs to.
    pub fn groups_of(&self, user_id: &str) -> Vec<&Group> {
        self.groups
            .iter()
            .filter(|g| g.members.contains(user_id))
            .collect()
    }
    /// Own and inherited grants of a user.
    pub fn grants_of(&self, user_id: &str) -> Grants {
        let own = self
            .user(user_id)
            .map(|u| u.grants.iter().cloned().collect())
            .unwrap_or_default();
        let mut inherited: Vec<InheritedGrant> = self
            .groups_of(user_id)
            .into_iter()
            .flat_map(|g| {
                g.grants.iter().map(|gr| InheritedGrant {
                    group_id: g.id.clone(),
                    role_id: gr.role_id.clone(),
                    division_id: gr.division_id.clone(),
                })
            })
            .collect();
        inherited.sort();
        Grants { own, inherited }
    }
}

/// A fresh Genesys-style id (a UUID).
pub(crate) fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Now as RFC 3339 with milliseconds, UTC (`yyyy-MM-ddTHH:mm:ss.SSSZ`).
pub(crate) fn now_rfc3339() -> String {
    rfc3339(SystemTime::now())
}

/// A time as RFC 3339 with milliseconds, UTC.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// `{"id": id, "name": name, "selfUri": uri}` — the Platform API's entity reference.
pub(crate) fn entity_ref(id: &str, name: Option<&str>, self_uri: &str) -> Value {
    let mut v = json!({ "id": id, "selfUri": self_uri });
    if let (Some(name), Some(obj)) = (name, v.as_object_mut()) {
        obj.insert("name".into(), json!(name));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_and_a_leap_day() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_782_400_123); // 2000-02-29
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00.123Z");
    }
}
