//! `POST /admin/v1/expressions/evaluate` (`admin` scope): evaluates an Entra
//! attribute-mapping expression ([`muster_expr`]) against attributes given in
//! the body, to try a mapping before it is used.
//!
//! Body: `{"expression": "...", "attributes": {...}}` (`attributes` may be
//! left out: every attribute is then absent; `now` may fix `Now()` as an
//! RFC 3339 time). Answers `200 {"value": ...}` (plus `"warnings"` when there
//! are any), `200 {"skipFlow": true}` when IgnoreFlowIfNullOrEmpty leaves the
//! attribute out, or `400` `invalidValue` whose `detail` names the problem and
//! its position. The procedure is [`muster_expr::request::evaluate_request`],
//! shared with the console's expression tester.

use muster_expr::request::evaluate_request;
use muster_scim::ScimError;

use crate::error::ApiError;
use crate::media::{ScimJson, ScimResponse};

/// `POST /admin/v1/expressions/evaluate`.
pub async fn evaluate(ScimJson(body): ScimJson) -> Result<ScimResponse, ApiError> {
    evaluate_request(body)
        .map(ScimResponse::ok)
        .map_err(|detail| ScimError::invalid_value(detail).into())
}
