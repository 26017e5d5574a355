//! A Genesys Cloud user's contact-center entitlements (issue 10): routing
//! skills and languages and the home division ride along the user's SCIM
//! writes ([`scim_values`]: Genesys' requests are its budget); role grants
//! in divisions, the workforce-management unit and licenses, which its
//! SCIM cannot carry, go through its Platform API ([`deliver`]).
//!
//! Names are resolved to Genesys ids by lookup, cached (a name not found is
//! asked again after [`MISS_TTL`], so objects created at Genesys are picked
//! up once they propagate) and reported as not delivered with the reason.
//! Only the user's own grants are touched: grants inherited from groups
//! carry the group's subject id and are left alone; grants are removed one
//! by one, since a bulk remove fails as a whole on a stale id.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use muster_rules::CONTACT_CENTER_URN;
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::deliver::{encode, ScimDelivery};

/// How long a name Genesys did not know is remembered as missing.
pub const MISS_TTL: Duration = Duration::from_secs(30);

/// How many times a grant is tried while a new role or division propagates.
const PROPAGATION_ATTEMPTS: u32 = 5;

/// The wait between those tries.
const PROPAGATION_WAIT: Duration = Duration::from_secs(2);

/// The kinds of Genesys object Muster looks up by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    /// An authorization division.
    Division,
    /// An authorization role.
    Role,
    /// A routing skill.
    Skill,
    /// A routing language.
    Language,
    /// A workforce-management unit.
    ManagementUnit,
    /// A license definition.
    License,
}

impl ObjectKind {
    fn noun(self) -> &'static str {
        match self {
            ObjectKind::Division => "division",
            ObjectKind::Role => "role",
            ObjectKind::Skill => "routing skill",
            ObjectKind::Language => "routing language",
            ObjectKind::ManagementUnit => "management unit",
            ObjectKind::License => "license",
        }
    }

    /// The list endpoint, and whether it takes a `name` query.
    fn endpoint(self) -> (&'static str, bool) {
        match self {
            ObjectKind::Division => ("/api/v2/authorization/divisions", true),
            ObjectKind::Role => ("/api/v2/authorization/roles", true),
            ObjectKind::Skill => ("/api/v2/routing/skills", true),
            ObjectKind::Language => ("/api/v2/routing/languages", true),
            ObjectKind::ManagementUnit => ("/api/v2/workforcemanagement/managementunits", false),
            ObjectKind::License => ("/api/v2/license/definitions", false),
        }
    }
}

/// A user's entitlements as Genesys takes them (names; ids are looked up).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entitlements {
    /// (role, division) pairs.
    pub grants: BTreeSet<(String, String)>,
    /// Skill name → proficiency 0 to 5.
    pub skills: BTreeMap<String, f64>,
    /// Language name → proficiency 0 to 5.
    pub languages: BTreeMap<String, f64>,
    /// The management unit.
    pub management_unit: Option<String>,
    /// The home division.
    pub home_division: Option<String>,
    /// License names.
    pub licenses: BTreeSet<String>,
}

/// The elements of a multi-valued attribute (none when absent).
fn elements(value: Option<&Value>) -> Vec<Value> {
    value.and_then(Value::as_array).cloned().unwrap_or_default()
}

impl Entitlements {
    /// The entitlements computed on a Muster user (its contact-center
    /// extension); none without one.
    pub fn of_user(user: &Value) -> Entitlements {
        let Some(extension) = user.get(CONTACT_CENTER_URN) else {
            return Entitlements::default();
        };
        let text =
            |item: &Value, key: &str| item.get(key).and_then(Value::as_str).map(str::to_owned);
        let mut entitlements = Entitlements::default();
        for grant in elements(extension.get("grants")) {
            if let (Some(role), Some(division)) = (text(&grant, "role"), text(&grant, "division")) {
                entitlements.grants.insert((role, division));
            }
        }
        for (key, into) in [
            ("skills", &mut entitlements.skills),
            ("languages", &mut entitlements.languages),
        ] {
            for item in elements(extension.get(key)) {
                if let Some(name) = text(&item, "name") {
                    let proficiency = item
                        .get("proficiency")
                        .and_then(Value::as_f64)
                        .unwrap_or(0.0);
                    into.insert(name, proficiency);
                }
            }
        }
        entitlements.management_unit = extension
            .get("managementUnit")
            .and_then(|unit| text(unit, "name"));
        entitlements.home_division = extension
            .get("homeDivision")
            .and_then(|division| text(division, "name"));
        for license in elements(extension.get("licenses")) {
            if let Some(name) = text(&license, "name") {
                entitlements.licenses.insert(name);
            }
        }
        entitlements
    }
}

/// Something the platform did not take, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotDelivered {
    /// What (for example `role Quality Evaluator in Customer Support`).
    pub what: String,
    /// Why.
    pub reason: String,
}

/// What a lookup found (`None`: no such name) and when.
type Lookup = (Option<String>, Instant);

/// Name → id lookups, cached per target.
#[derive(Default)]
pub struct Directory {
    found: Mutex<HashMap<(ObjectKind, String), Lookup>>,
    home: Mutex<Option<(String, String)>>,
}

impl Directory {
    /// The organisation's home division (id, name), read once.
    pub(crate) async fn home_division(
        &self,
        delivery: &ScimDelivery,
        api_root: &str,
    ) -> Result<(String, String), String> {
        let mut home = self.home.lock().await;
        if let Some(known) = &*home {
            return Ok(known.clone());
        }
        let url = format!("{api_root}/api/v2/authorization/divisions/home");
        let exchange = delivery.exchange_url(Method::GET, url, None).await;
        let found = match (
            exchange.answer.get("id").and_then(Value::as_str),
            exchange.answer.get("name").and_then(Value::as_str),
        ) {
            (Some(id), Some(name)) if exchange.succeeded() => (id.to_owned(), name.to_owned()),
            _ => return Err(format!("reading the home division: {}", exchange.summary())),
        };
        *home = Some(found.clone());
        Ok(found)
    }

    /// The Genesys id of a named object, `Ok(None)` when Genesys has none
    /// of that name (remembered for [`MISS_TTL`]).
    pub(crate) async fn id(
        &self,
        delivery: &ScimDelivery,
        api_root: &str,
        kind: ObjectKind,
        name: &str,
    ) -> Result<Option<String>, String> {
        let key = (kind, name.to_ascii_lowercase());
        if let Some((id, at)) = self.found.lock().await.get(&key) {
            if id.is_some() || at.elapsed() < MISS_TTL {
                return Ok(id.clone());
            }
        }
        let (path, by_name) = kind.endpoint();
        let url = if by_name {
            format!("{api_root}{path}?pageSize=100&name={}", encode(name))
        } else {
            format!("{api_root}{path}?pageSize=100")
        };
        let exchange = delivery.exchange_url(Method::GET, url, None).await;
        if !exchange.succeeded() {
            return Err(format!(
                "looking up {} '{name}': {}",
                kind.noun(),
                exchange.summary()
            ));
        }
        // Most lists are pages (`entities`); license definitions are a bare array.
        let entities = match &exchange.answer {
            Value::Array(items) => items.clone(),
            page => page
                .get("entities")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        };
        let mut cache = self.found.lock().await;
        let mut wanted = None;
        for entity in entities {
            let (Some(id), Some(found)) = (
                entity.get("id").and_then(Value::as_str),
                entity.get("name").and_then(Value::as_str),
            ) else {
                continue;
            };
            if found.eq_ignore_ascii_case(name)
                || (kind == ObjectKind::License && id.eq_ignore_ascii_case(name))
            {
                wanted = Some(id.to_owned());
            }
            cache.insert(
                (kind, found.to_ascii_lowercase()),
                (Some(id.to_owned()), Instant::now()),
            );
        }
        cache.insert(key, (wanted.clone(), Instant::now()));
        Ok(wanted)
    }
}

/// The Genesys SCIM extension's URN (routing skills and languages by name).
pub const GENESYS_EXTENSION: &str =
    "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User";

/// What of a user's entitlements Genesys' SCIM carries (so they ride along
/// the user's own create or PATCH instead of costing requests of their
/// own): routing skills and languages by name, and the home division as
/// the enterprise `division`. Names Genesys does not have are left out and
/// returned as not delivered (a SCIM write naming one would be refused).
pub(crate) async fn scim_values(
    delivery: &ScimDelivery,
    api_root: &str,
    directory: &Directory,
    entitlements: &Entitlements,
) -> Result<(Vec<(String, Value)>, Vec<NotDelivered>), String> {
    let mut missing = Vec::new();
    let mut values = Vec::new();
    for (kind, attribute, wanted) in [
        (ObjectKind::Skill, "routingSkills", &entitlements.skills),
        (
            ObjectKind::Language,
            "routingLanguages",
            &entitlements.languages,
        ),
    ] {
        let mut list = Vec::new();
        for (name, proficiency) in wanted {
            if directory
                .id(delivery, api_root, kind, name)
                .await?
                .is_some()
            {
                list.push(json!({"name": name, "proficiency": proficiency}));
            } else {
                missing.push(NotDelivered {
                    what: format!("{} {name}", kind.noun()),
                    reason: format!("Genesys Cloud has no {} named '{name}'", kind.noun()),
                });
            }
        }
        let value = if list.is_empty() {
            Value::Null
        } else {
            Value::Array(list)
        };
        values.push((format!("{GENESYS_EXTENSION}:{attribute}"), value));
    }
    if let Some(division) = &entitlements.home_division {
        if directory
            .id(delivery, api_root, ObjectKind::Division, division)
            .await?
            .is_some()
        {
            values.push((
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:division".into(),
                Value::String(division.clone()),
            ));
        } else {
            missing.push(NotDelivered {
                what: format!("home division {division}"),
                reason: format!("Genesys Cloud has no division named '{division}'"),
            });
        }
    }
    Ok((values, missing))
}

/// Brings a Genesys user's own role grants from `before` (what was last
/// delivered; `None`: unknown) to `now`. `held`: the grants the user is
/// known to hold already without a read (those a create Muster just made
/// gave over SCIM; `None`: read them). Returns what could not be
/// delivered; `Err` when a call failed in a way retrying later may fix.
pub(crate) async fn deliver_grants(
    delivery: &ScimDelivery,
    api_root: &str,
    directory: &Directory,
    user_id: &str,
    before: Option<&Entitlements>,
    now: &Entitlements,
    held: Option<&BTreeSet<(String, String)>>,
) -> Result<Vec<NotDelivered>, String> {
    let mut missing = Vec::new();
    if before.map(|b| &b.grants) == Some(&now.grants) {
        return Ok(missing);
    }
    let user = encode(user_id);
    let mut desired = BTreeSet::new();
    for (role, division) in &now.grants {
        let role_id = resolve(
            delivery,
            api_root,
            directory,
            ObjectKind::Role,
            role,
            &mut missing,
        )
        .await?;
        let division_id = resolve(
            delivery,
            api_root,
            directory,
            ObjectKind::Division,
            division,
            &mut missing,
        )
        .await?;
        if let (Some(role_id), Some(division_id)) = (role_id, division_id) {
            desired.insert((role_id, division_id));
        }
    }
    let own: BTreeSet<(String, String)> = match held {
        Some(held) => held.clone(),
        None => {
            let url =
                format!("{api_root}/api/v2/authorization/subjects/{user}?includeDuplicates=true");
            let exchange = delivery.exchange_url(Method::GET, url, None).await;
            if !exchange.succeeded() {
                return Err(format!("reading the user's grants: {}", exchange.summary()));
            }
            exchange
                .answer
                .get("grants")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|grant| grant.get("subjectId").and_then(Value::as_str) == Some(user_id))
                .filter_map(|grant| {
                    let role = grant.pointer("/role/id")?.as_str()?.to_owned();
                    let division = grant.pointer("/division/id")?.as_str()?.to_owned();
                    Some((role, division))
                })
                .collect()
        }
    };
    let added: Vec<Value> = desired
        .difference(&own)
        .map(|(role, division)| json!({"roleId": role, "divisionId": division}))
        .collect();
    if !added.is_empty() {
        let url =
            format!("{api_root}/api/v2/authorization/subjects/{user}/bulkadd?subjectType=PC_USER");
        let mut attempt = 0;
        loop {
            let exchange = delivery
                .exchange_url(Method::POST, url.clone(), Some(json!({"grants": added})))
                .await;
            if exchange.succeeded() {
                break;
            }
            // A role or division made moments ago is 404 until it
            // propagates through Genesys' authorization cache.
            attempt += 1;
            if exchange.status == Some(StatusCode::NOT_FOUND) && attempt < PROPAGATION_ATTEMPTS {
                tokio::time::sleep(PROPAGATION_WAIT).await;
                continue;
            }
            if exchange.status == Some(StatusCode::NOT_FOUND) {
                missing.push(NotDelivered {
                    what: "role grants".into(),
                    reason: format!(
                        "Genesys Cloud still answers 404 for a role or division after {} s: {}",
                        PROPAGATION_WAIT.as_secs() * u64::from(PROPAGATION_ATTEMPTS),
                        exchange.summary()
                    ),
                });
                break;
            }
            return Err(format!("adding grants: {}", exchange.summary()));
        }
    }
    for (role, division) in own.difference(&desired) {
        let url = format!(
            "{api_root}/api/v2/authorization/subjects/{user}/divisions/{}/roles/{}",
            encode(division),
            encode(role)
        );
        let exchange = delivery.exchange_url(Method::DELETE, url, None).await;
        if !exchange.succeeded() && exchange.status != Some(StatusCode::NOT_FOUND) {
            return Err(format!("removing a grant: {}", exchange.summary()));
        }
    }
    Ok(missing)
}

/// The id of a named object; `None`, noted in `missing`, when Genesys has
/// no object of that name.
async fn resolve(
    delivery: &ScimDelivery,
    api_root: &str,
    directory: &Directory,
    kind: ObjectKind,
    name: &str,
    missing: &mut Vec<NotDelivered>,
) -> Result<Option<String>, String> {
    let id = directory.id(delivery, api_root, kind, name).await?;
    if id.is_none() {
        missing.push(NotDelivered {
            what: format!("{} {name}", kind.noun()),
            reason: format!("Genesys Cloud has no {} named '{name}'", kind.noun()),
        });
    }
    Ok(id)
}

/// The role grants of a new user that can ride along its SCIM create as
/// `roles` (role names): those in the organisation's home division, where
/// Genesys grants SCIM roles. Returns the SCIM value and the (role id,
/// division id) pairs it grants.
pub(crate) async fn scim_roles(
    delivery: &ScimDelivery,
    api_root: &str,
    directory: &Directory,
    entitlements: &Entitlements,
) -> Result<(Value, BTreeSet<(String, String)>), String> {
    let home = directory.home_division(delivery, api_root).await?;
    let mut names = Vec::new();
    let mut granted = BTreeSet::new();
    for (role, division) in &entitlements.grants {
        if !division.eq_ignore_ascii_case(&home.1) {
            continue;
        }
        if let Some(role_id) = directory
            .id(delivery, api_root, ObjectKind::Role, role)
            .await?
        {
            names.push(json!({"value": role}));
            granted.insert((role_id, home.0.clone()));
        }
    }
    Ok((Value::Array(names), granted))
}

/// A user's management-unit move and license changes: Genesys takes many
/// users' in one request each, so they wait for the batch's
/// [`send_batched`].
#[derive(Debug, Clone, Default)]
pub(crate) struct BatchedChanges {
    /// The user's Genesys id.
    pub user_id: String,
    /// The unit to move to (`Some(None)`: out of any unit), with its name.
    pub move_to: Option<(Option<String>, String)>,
    /// License ids to assign, with their names.
    pub licenses_added: Vec<(String, String)>,
    /// License ids to remove, with their names.
    pub licenses_removed: Vec<(String, String)>,
}

impl BatchedChanges {
    /// Whether there is nothing to send.
    pub(crate) fn is_empty(&self) -> bool {
        self.move_to.is_none() && self.licenses_added.is_empty() && self.licenses_removed.is_empty()
    }
}

/// What of a user's management unit and licenses must change from
/// `before` to `now`, names resolved (those Genesys lacks go to `missing`).
pub(crate) async fn batched_changes(
    delivery: &ScimDelivery,
    api_root: &str,
    directory: &Directory,
    user_id: &str,
    before: Option<&Entitlements>,
    now: &Entitlements,
    missing: &mut Vec<NotDelivered>,
) -> Result<BatchedChanges, String> {
    let mut changes = BatchedChanges {
        user_id: user_id.to_owned(),
        ..BatchedChanges::default()
    };
    if before.map(|b| &b.management_unit) != Some(&now.management_unit) {
        match &now.management_unit {
            Some(unit) => {
                if let Some(id) = resolve(
                    delivery,
                    api_root,
                    directory,
                    ObjectKind::ManagementUnit,
                    unit,
                    missing,
                )
                .await?
                {
                    changes.move_to = Some((Some(id), unit.clone()));
                }
            }
            None => changes.move_to = Some((None, "(none)".into())),
        }
    }
    if before.map(|b| &b.licenses) != Some(&now.licenses) {
        let previous = before.map(|b| b.licenses.clone()).unwrap_or_default();
        for license in now.licenses.difference(&previous) {
            if let Some(id) = resolve(
                delivery,
                api_root,
                directory,
                ObjectKind::License,
                license,
                missing,
            )
            .await?
            {
                changes.licenses_added.push((id, license.clone()));
            }
        }
        for license in previous.difference(&now.licenses) {
            if let Some(id) = directory
                .id(delivery, api_root, ObjectKind::License, license)
                .await?
            {
                changes.licenses_removed.push((id, license.clone()));
            }
        }
    }
    Ok(changes)
}

/// What a batch flush did to one user: what Genesys refused in its
/// per-user results, or why the user's requests failed as a whole.
pub(crate) type BatchOutcome = Result<Vec<NotDelivered>, String>;

/// A per-user result Genesys answered other than success: (user id,
/// license id for a license result, the result).
type Refusal = (String, Option<String>, String);

/// Sends the management-unit moves and license changes of several users
/// (each user at most once), at most `batch_size` users per request: one
/// move request per destination unit, one license request per chunk. A
/// request refused as a whole (one stale user id can do it) is sent again
/// one user at a time, so only the users it fails for fail. Returns one
/// outcome per entry of `batch`.
pub(crate) async fn send_batched(
    delivery: &ScimDelivery,
    api_root: &str,
    batch: &[BatchedChanges],
    batch_size: usize,
) -> Vec<BatchOutcome> {
    let batch_size = batch_size.max(1);
    let mut outcomes: Vec<BatchOutcome> = vec![Ok(Vec::new()); batch.len()];
    let mut refusals: Vec<Refusal> = Vec::new();

    let mut moves: BTreeMap<Option<&str>, Vec<usize>> = BTreeMap::new();
    for (index, changes) in batch.iter().enumerate() {
        if let Some((destination, _)) = &changes.move_to {
            moves.entry(destination.as_deref()).or_default().push(index);
        }
    }
    for (destination, entries) in moves {
        for chunk in entries.chunks(batch_size) {
            let users: Vec<&str> = chunk.iter().map(|&i| batch[i].user_id.as_str()).collect();
            match move_agents(delivery, api_root, &users, destination).await {
                Ok(refused) => refusals.extend(refused),
                Err(reason) if chunk.len() == 1 => fail(&mut outcomes, chunk[0], &reason),
                Err(_) => {
                    for (&index, user) in chunk.iter().zip(&users) {
                        match move_agents(delivery, api_root, &[user], destination).await {
                            Ok(refused) => refusals.extend(refused),
                            Err(reason) => fail(&mut outcomes, index, &reason),
                        }
                    }
                }
            }
        }
    }

    let mut assignments: Vec<(&str, usize, bool)> = Vec::new();
    for (index, changes) in batch.iter().enumerate() {
        for (id, _) in &changes.licenses_added {
            assignments.push((id, index, true));
        }
        for (id, _) in &changes.licenses_removed {
            assignments.push((id, index, false));
        }
    }
    for chunk in assignments.chunks(batch_size) {
        match assign_licenses(delivery, api_root, batch, chunk).await {
            Ok(refused) => refusals.extend(refused),
            Err(reason) if chunk.len() == 1 => fail(&mut outcomes, chunk[0].1, &reason),
            Err(_) => {
                for item in chunk {
                    match assign_licenses(delivery, api_root, batch, std::slice::from_ref(item))
                        .await
                    {
                        Ok(refused) => refusals.extend(refused),
                        Err(reason) => fail(&mut outcomes, item.1, &reason),
                    }
                }
            }
        }
    }

    for (user, license, result) in refusals {
        let Some(index) = batch.iter().position(|changes| changes.user_id == user) else {
            continue;
        };
        let changes = &batch[index];
        let what = match &license {
            None => format!(
                "management unit {}",
                changes
                    .move_to
                    .as_ref()
                    .map_or("", |(_, name)| name.as_str())
            ),
            Some(license) => {
                let name = changes
                    .licenses_added
                    .iter()
                    .chain(&changes.licenses_removed)
                    .find(|(id, _)| id == license)
                    .map_or(license.as_str(), |(_, name)| name.as_str());
                format!("license {name}")
            }
        };
        if let Some(Ok(missing)) = outcomes.get_mut(index) {
            missing.push(NotDelivered {
                what,
                reason: format!("Genesys Cloud answered {result}"),
            });
        }
    }
    outcomes
}

/// Marks an entry failed (its first reason is kept).
fn fail(outcomes: &mut [BatchOutcome], index: usize, reason: &str) {
    if let Some(outcome) = outcomes.get_mut(index) {
        if outcome.is_ok() {
            *outcome = Err(reason.to_owned());
        }
    }
}

/// Moves `users` to `destination` (`None`: out of any unit) in one
/// request; returns the per-user results other than success.
async fn move_agents(
    delivery: &ScimDelivery,
    api_root: &str,
    users: &[&str],
    destination: Option<&str>,
) -> Result<Vec<Refusal>, String> {
    let url = format!("{api_root}/api/v2/workforcemanagement/agents");
    let body = json!({"userIds": users, "destinationManagementUnitId": destination});
    let exchange = delivery.exchange_url(Method::POST, url, Some(body)).await;
    if !exchange.succeeded() {
        return Err(format!(
            "moving agents between management units: {}",
            exchange.summary()
        ));
    }
    Ok(exchange
        .answer
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|result| {
            let user = result.pointer("/user/id")?.as_str()?;
            let outcome = result.get("result")?.as_str()?;
            (!matches!(outcome, "MoveSuccessful" | "AlreadyMoved" | "NothingToDo"))
                .then(|| (user.to_owned(), None, outcome.to_owned()))
        })
        .collect())
}

/// Sends license assignments (license id, entry of `batch`, add) in one
/// request; returns the per-user results other than success (the result
/// strings are undocumented: anything but `Success` is shown).
async fn assign_licenses(
    delivery: &ScimDelivery,
    api_root: &str,
    batch: &[BatchedChanges],
    assignments: &[(&str, usize, bool)],
) -> Result<Vec<Refusal>, String> {
    let mut by_license: BTreeMap<&str, (Vec<&str>, Vec<&str>)> = BTreeMap::new();
    for &(license, index, add) in assignments {
        let (added, removed) = by_license.entry(license).or_default();
        let user = batch[index].user_id.as_str();
        if add {
            added.push(user);
        } else {
            removed.push(user);
        }
    }
    let body: Vec<Value> = by_license
        .into_iter()
        .map(|(license, (added, removed))| {
            json!({"licenseId": license, "userIdsAdd": added, "userIdsRemove": removed})
        })
        .collect();
    let url = format!("{api_root}/api/v2/license/organization");
    let exchange = delivery
        .exchange_url(Method::POST, url, Some(json!({"assignments": body})))
        .await;
    if !exchange.succeeded() {
        return Err(format!("assigning licenses: {}", exchange.summary()));
    }
    Ok(exchange
        .answer
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|result| {
            let user = result.get("userId")?.as_str()?;
            let license = result.get("licenseId")?.as_str()?;
            let outcome = result.get("result")?.as_str()?;
            (!outcome.eq_ignore_ascii_case("success")).then(|| {
                (
                    user.to_owned(),
                    Some(license.to_owned()),
                    outcome.to_owned(),
                )
            })
        })
        .collect())
}

/// Finds a soft-deleted Genesys user by email (a SCIM lookup cannot see
/// one, and a SCIM create of its userName conflicts) and restores it.
/// Returns its id; `Ok(None)` when there is no such deleted user. Genesys
/// does not restore the roles of a restored user: the entitlement stage
/// grants them again.
pub(crate) async fn restore_deleted(
    delivery: &ScimDelivery,
    api_root: &str,
    email: &str,
) -> Result<Option<String>, String> {
    // A version clash (the user changed between the search and the
    // restore) is answered by searching again, once.
    for attempt in 0..2 {
        let Some((id, version)) = find_deleted(delivery, api_root, email).await? else {
            return Ok(None);
        };
        let url = format!("{api_root}/api/v2/users/{}", encode(&id));
        let body = json!({"state": "active", "version": version});
        let exchange = delivery.exchange_url(Method::PATCH, url, Some(body)).await;
        if exchange.succeeded() {
            return Ok(Some(id));
        }
        let clash = exchange.status == Some(StatusCode::CONFLICT)
            || exchange
                .answer
                .get("message")
                .and_then(Value::as_str)
                .is_some_and(|message| message.contains("does not match the current version"));
        if !clash || attempt == 1 {
            return Err(format!(
                "restoring the deleted user: {}",
                exchange.summary()
            ));
        }
    }
    Ok(None)
}

/// The (id, version) of the soft-deleted user with this email, if any.
async fn find_deleted(
    delivery: &ScimDelivery,
    api_root: &str,
    email: &str,
) -> Result<Option<(String, u64)>, String> {
    let query = json!({
        "pageSize": 2,
        "query": [
            {"fields": ["email"], "value": email, "type": "EXACT"},
            {"fields": ["state"], "values": ["deleted"], "type": "EXACT"}
        ]
    });
    let url = format!("{api_root}/api/v2/users/search");
    let exchange = delivery.exchange_url(Method::POST, url, Some(query)).await;
    if !exchange.succeeded() {
        return Err(format!("searching deleted users: {}", exchange.summary()));
    }
    let found = exchange
        .answer
        .get("results")
        .and_then(Value::as_array)
        .and_then(|results| results.first());
    Ok(found.and_then(|found| {
        let id = found.get("id").and_then(Value::as_str)?;
        let version = found.get("version").and_then(Value::as_u64)?;
        Some((id.to_owned(), version))
    }))
}
