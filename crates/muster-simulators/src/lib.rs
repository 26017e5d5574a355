//! Test support: in-process simulators of the contact-center platforms Muster provisions.
//!
//! This crate is part of the test tree, not of Muster: `publish = false`, used as a
//! dev-dependency only. A simulator follows the platform's **public** contract — including
//! its unpleasant parts — so that Muster's targets are tested against what the platform
//! does, not against what would be convenient. Every request is recorded, so tests can
//! assert the exact traffic (no group ever created, never a page over 25, inherited grants
//! never removed, the budget never exceeded).
//!
//! # Five9 ([`five9::Five9Sim`])
//!
//! The SOAP Admin Web Service's user and skill operations, with HTTP Basic, WSDL-named
//! faults and an operations limit: see the [`five9`] module.
//!
//! # Genesys Cloud ([`genesys::GenesysSim`])
//!
//! An axum server on `127.0.0.1:0`; [`genesys::GenesysSim::api_base_url`] is the `api.`
//! host and [`genesys::GenesysSim::login_url`] the `login.` host (the same server).
//!
//! Sources (gathered in `../shared/reference/contact-center-apis.md`, sections 1, 2 and 5):
//! the Python SDK `MyPureCloud/platform-client-sdk-python` `build/docs/*.md` (SCIMApi,
//! AuthorizationApi, UsersApi, RoutingApi, WorkforceManagementApi, LicenseApi, ErrorBody,
//! ScimV2User, ScimMetadata, AuthzSubject, LicenseUser, LicenseUpdateStatus), the Go SDK's
//! token and retry code, `MyPureCloud/terraform-provider-genesyscloud` (grants, restore of
//! deleted users, bulk remove on stale ids), help.mypurecloud.com (SCIM field mappings and
//! lifecycle FAQ), the developer forum t/12028 (the 429 body) and Microsoft's provisioning
//! tutorial (groups must pre-exist).
//!
//! What it simulates:
//! - **OAuth**: `POST /oauth/token`, Basic `id:secret`, form `grant_type=client_credentials`
//!   → `{access_token, token_type, expires_in}`; failures `{error, description,
//!   error_description}`. API calls without a valid bearer token: 401
//!   `authentication.required`.
//! - **Rate limit**: a budget per token per window (300 a minute by default);
//!   `inin-ratelimit-allowed|count|reset` on every authenticated answer; above the budget
//!   429 with `Retry-After` and `{"message":"Rate limit exceeded the maximum. Retry the
//!   request in [n] seconds","code":"too.many.requests.retry.after","status":429,…}`.
//! - **SCIM 2.0** under `/api/v2/scim/v2`: Users GET/POST and GET/PUT/PATCH/DELETE by id;
//!   `eq` filters on `id`, `userName`, `externalId`, `active`, `email`, `manager`,
//!   `division`, `employeeNumber` and `externalIds[authority eq … and value eq …]`, anything
//!   else 400 `invalidFilter`; an unfiltered list returns active users only; `count`
//!   defaults to 25 and a larger page answers 429 unless `externalId`, `roles`,
//!   `routingSkills` and `routingLanguages` are excluded (`excludedAttributes`) or left out
//!   of `attributes`; `count=0` gives only `totalResults`; `If-Match` mismatch → 400
//!   `invalidVers`, `If-None-Match` → 304; the enterprise extension (`division` by name,
//!   `manager.value` a Genesys user id, `department`, `employeeNumber`, `dateHire`); the
//!   Genesys extension (`routingSkills` / `routingLanguages` by case-sensitive name,
//!   proficiency 0–5, at most 50; `externalIds` with the immutable `x-pc:scimv2:v1`
//!   authority); `roles[].value` by role name; emails `other` (= userName, read-only) and
//!   `work`; `active=false` makes the user inactive and frees its licenses; DELETE is a soft
//!   delete (state `deleted`) that drops own grants, licenses and memberships, which a
//!   restore does not bring back. `givenName`/`familyName` are not supported: the `name`
//!   attribute is accepted and ignored, never returned (ScimV2User has no `name`). Groups:
//!   GET list (`displayName` case-insensitive, `id`), GET/PUT/PATCH by id (members);
//!   `POST /Groups` and `DELETE /Groups/{id}` are removed (SDK 109.0.0) and answer 404.
//!   Errors: `{schemas, status (a string), scimType, detail}`.
//! - **Platform API** under `/api/v2`: authorization subjects (GET with
//!   `includeDuplicates`; grants inherited from groups carry the group's `subjectId`;
//!   `bulkadd`/`bulkremove`/`bulkreplace` with `subjectType=PC_USER` — one missing role or
//!   division fails the whole call with 404, bulkreplace keeps inherited grants; single
//!   POST/DELETE `/subjects/{id}/divisions/{d}/roles/{r}`), a "just created" role that
//!   404s in grants calls for a while, divisions (list by `name`/`id`, `home`, move users
//!   with `POST /authorization/divisions/{d}/objects/USER`), roles, routing skills (`name`
//!   is a prefix) and languages, `POST /users` (409 `general.conflict` on an existing or
//!   deleted email), `POST /users/search` (deleted users only when `state` is asked),
//!   `GET/PATCH /users/{id}` with `version` (restore with `{"state":"active"}`), user
//!   routing skills (PUT bulk replaces, PATCH bulk adds) and languages (PATCH bulk only, at
//!   most 50), WFM agent moves with per-user `results[].result` (MoveSuccessful,
//!   AlreadyMoved, NothingToDo, DestinationManagementUnitDoesNotExist,
//!   DestinationManagementUnitAgentLimitExceeded; a null destination removes), an agent's
//!   management unit, management units by division, license assignment with per-user
//!   results, a user's licenses, license definitions. Errors use the `ErrorBody` shape
//!   `{message, code, status, contextId, details, errors, …}`.
//!
//! Unverified facts are options of [`genesys::GenesysOptions`]: the division a SCIM role
//! lands in (home), whether a SCIM POST on a soft-deleted user's userName conflicts (yes),
//! whether filtered SCIM lists include inactive users (no), whether a SCIM PUT without
//! `roles` keeps them (no), the status of the removed group endpoints (404), 200 vs 202
//! for WFM moves (200), 409 vs 400 for a Platform version clash (409), the page served
//! when heavy attributes are excluded (100), the rate budget and window, how long a new
//! role lags, the license result strings (`Success`, `UserNotFound`, `LicenseNotFound`).
//! Also unverified but fixed: 400 for unknown user ids in a WFM move, 204 for a single
//! revoke of a grant not held, 404 for an agent in no management unit.
//!
//! Left out: permissions (every token may do everything), `PUT /users/{id}/roles`, the
//! single-item skill and language endpoints, `/ResourceTypes` and `/Schemas`, the legacy
//! `/api/v2/scim/` twin, passwords, asynchronous completion of WFM moves, the
//! `org.app.user.rate.per.minute` limit, stations and telephony.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use muster_simulators::genesys::{GenesysOptions, GenesysSim, SeedUser};
//!
//! let sim = GenesysSim::start(GenesysOptions::default()).await;
//! let sales = sim.seed_division("Sales");
//! let agent = sim.seed_role("Agent");
//! let user = sim.seed_user(SeedUser::new("ada@example.com"));
//! sim.seed_user_grant(&user, &agent, &sales);
//! assert_eq!(sim.grants_of(&user).own.len(), 1);
//! assert!(sim.api_base_url().starts_with("http://127.0.0.1:"));
//! # }
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test support: a failed set-up step must fail the test loudly"
)]
#![allow(
    clippy::result_large_err,
    reason = "handlers return ready HTTP answers as errors; a simulator does not need them small"
)]

pub mod five9;
pub mod genesys;
pub mod nice;
