//! `GET /admin/v1/audit` (`admin` scope): the tenant's audit trail,
//! filtered by user (id or `userName`), client and time range, in chain
//! order, a page at a time. The procedure is [`muster_core::audit::query`],
//! shared with `muster audit`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::Extension;
use muster_core::audit::{query, AuditFilter, MAX_PAGE};
use muster_core::tokens::Client;
use muster_scim::ScimError;
use serde_json::json;

use crate::error::ApiError;
use crate::media::ScimResponse;
use crate::AppState;

/// Entries per page when no `count` is given.
pub const DEFAULT_COUNT: u64 = 100;

/// The query parameters of [`audit`]; any other is refused.
const PARAMETERS: [&str; 6] = ["user", "client", "since", "until", "count", "cursor"];

/// `GET /admin/v1/audit?user=&client=&since=&until=&count=&cursor=`: a
/// page of entries (`Resources`, oldest first) and, when more may follow,
/// `nextCursor`. Only the caller's tenant's entries.
pub async fn audit(
    State(state): State<AppState>,
    Extension(client): Extension<Client>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<ScimResponse, ApiError> {
    let mut parameters: HashMap<String, String> = HashMap::new();
    for (name, value) in pairs {
        if !PARAMETERS.contains(&name.as_str()) {
            return Err(ScimError::invalid_value(format!(
                "'{name}' is not a parameter of the audit query; expected {}",
                PARAMETERS.join(", ")
            ))
            .into());
        }
        if parameters.insert(name.clone(), value).is_some() {
            return Err(ScimError::invalid_value(format!(
                "{name}: given more than once; give it once"
            ))
            .into());
        }
    }
    let text = |name: &str| {
        parameters
            .get(name)
            .filter(|value| !value.is_empty())
            .cloned()
    };
    let count = match parameters.get("count") {
        None => DEFAULT_COUNT,
        Some(count) => count
            .parse::<u64>()
            .ok()
            .filter(|count| (1..=MAX_PAGE).contains(count))
            .ok_or_else(|| {
                ApiError::from(ScimError::invalid_value(format!(
                    "count: '{count}' is not a number from 1 to {MAX_PAGE}"
                )))
            })?,
    };
    let filter = AuditFilter {
        user: text("user"),
        client: text("client"),
        since: text("since"),
        until: text("until"),
        cursor: text("cursor"),
        count,
    };
    let page = query(state.store(), &client.tenant, &filter).await?;
    let mut body = json!({
        "totalResults": page.entries.len(),
        "itemsPerPage": page.entries.len(),
        "Resources": page.entries,
    });
    if let (Some(cursor), Some(object)) = (page.next_cursor, body.as_object_mut()) {
        object.insert("nextCursor".to_owned(), json!(cursor));
    }
    Ok(ScimResponse::ok(body))
}
