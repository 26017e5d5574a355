//! Wire messages: ListResponse, SearchRequest, BulkRequest/BulkResponse,
//! ServiceProviderConfig, Error, and the paging arithmetic.

// Test helpers outside `#[test]` functions unwrap freely.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use muster_scim::message::{LIST_RESPONSE_URN, SEARCH_REQUEST_URN};
use muster_scim::{
    BulkMethod, BulkOperationResponse, BulkRequest, BulkResponse, ListResponse, Paging,
    SchemaRegistry, ScimError, ScimType, SearchRequest, ServiceProviderConfig,
    ServiceProviderLimits, SortOrder,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// ListResponse
// ---------------------------------------------------------------------------

#[test]
fn list_response_wire_form() {
    let page = ListResponse::new(vec![json!({"id": "a"}), json!({"id": "b"})], 12, 3);
    assert_eq!(
        serde_json::to_value(&page).unwrap(),
        json!({
            "schemas": [LIST_RESPONSE_URN],
            "totalResults": 12,
            "itemsPerPage": 2,
            "startIndex": 3,
            "Resources": [{"id": "a"}, {"id": "b"}]
        })
    );
    let empty: ListResponse = ListResponse::new(Vec::new(), 0, 0);
    assert_eq!(
        serde_json::to_value(&empty).unwrap(),
        json!({
            "schemas": [LIST_RESPONSE_URN],
            "totalResults": 0,
            "itemsPerPage": 0,
            "startIndex": 1,
            "Resources": []
        })
    );
    let cursor_page = ListResponse::with_cursor(vec![json!({"id": "a"})], 5, Some("c2".into()));
    assert_eq!(
        serde_json::to_value(&cursor_page).unwrap(),
        json!({
            "schemas": [LIST_RESPONSE_URN],
            "totalResults": 5,
            "itemsPerPage": 1,
            "Resources": [{"id": "a"}],
            "nextCursor": "c2"
        })
    );
}

#[test]
fn list_response_round_trips_and_reads_lenient_peers() {
    let mut page = ListResponse::new(vec![json!({"id": "a"})], 9, 1);
    page.previous_cursor = Some("p".into());
    let text = serde_json::to_string(&page).unwrap();
    assert_eq!(serde_json::from_str::<ListResponse>(&text).unwrap(), page);
    // A peer that writes `resources` in lower case and omits itemsPerPage.
    let peer: ListResponse = serde_json::from_value(json!({
        "schemas": [LIST_RESPONSE_URN],
        "totalResults": 1,
        "resources": [{"id": "x"}]
    }))
    .unwrap();
    assert_eq!(peer.resources, vec![json!({"id": "x"})]);
    assert_eq!(peer.start_index, None);
}

// ---------------------------------------------------------------------------
// Paging
// ---------------------------------------------------------------------------

#[test]
fn paging_from_query() {
    fn check(start_index: Option<&str>, count: Option<&str>, expected: Result<(u64, u64), &str>) {
        let actual = Paging::from_query(start_index, count, 100, 1000);
        match (actual, expected) {
            (Ok(paging), Ok((start, count_expected))) => {
                assert_eq!(
                    (paging.start_index, paging.count),
                    (start, count_expected),
                    "{start_index:?} {count:?}"
                );
            }
            (Err(error), Err(detail)) => {
                assert_eq!(error.scim_type, Some(ScimType::InvalidValue));
                assert!(
                    error.detail.contains(detail),
                    "{:?} lacks {detail:?}",
                    error.detail
                );
            }
            (actual, expected) => {
                panic!("{start_index:?} {count:?}: {actual:?}, expected {expected:?}")
            }
        }
    }
    check(None, None, Ok((1, 100)));
    check(Some("1"), Some("10"), Ok((1, 10)));
    check(Some("0"), Some("0"), Ok((1, 0)));
    check(Some("-7"), Some("-5"), Ok((1, 0)));
    check(Some(" 21 "), Some("+20"), Ok((21, 20)));
    check(Some("5"), Some("5000"), Ok((5, 1000)));
    check(
        Some("9223372036854775807"),
        Some("9223372036854775807"),
        Ok((i64::MAX as u64, 1000)),
    );
    // Beyond 64 bits is refused, not silently clamped.
    check(
        Some("99999999999999999999999999"),
        None,
        Err("startIndex 99999999999999999999999999 is out of range"),
    );
    check(
        None,
        Some("-99999999999999999999"),
        Err("count -99999999999999999999 is out of range"),
    );
    check(
        Some("abc"),
        None,
        Err("startIndex must be an integer, got 'abc'"),
    );
    check(
        None,
        Some("1.5"),
        Err("count must be an integer, got '1.5'"),
    );
    check(None, Some(""), Err("count must be an integer"));
    check(None, Some("-"), Err("count"));
}

#[test]
fn paging_windows() {
    let items: Vec<u32> = (1..=10).collect();
    let window = |start: i64, count: i64| {
        Paging::new(Some(start), Some(count), 100, 1000)
            .window(&items)
            .to_vec()
    };
    assert_eq!(window(1, 3), [1, 2, 3]);
    assert_eq!(window(9, 5), [9, 10]);
    assert_eq!(window(11, 5), Vec::<u32>::new());
    assert_eq!(window(4, 0), Vec::<u32>::new());
    assert_eq!(Paging::new(Some(4), None, 100, 1000).offset(), 3);
    // A default above the maximum is capped too.
    assert_eq!(Paging::new(None, None, 500, 50).count, 50);
}

// ---------------------------------------------------------------------------
// SearchRequest
// ---------------------------------------------------------------------------

#[test]
fn search_request_reads_the_rfc_example() {
    // RFC 7644 section 3.4.3.
    let request = SearchRequest::from_json(&json!({
        "schemas": [SEARCH_REQUEST_URN],
        "attributes": ["displayName", "userName"],
        "filter": "displayName sw \"smith\"",
        "startIndex": 1,
        "count": 10
    }))
    .unwrap();
    let expected = SearchRequest {
        attributes: vec!["displayName".into(), "userName".into()],
        filter: Some("displayName sw \"smith\"".into()),
        start_index: Some(1),
        count: Some(10),
        ..SearchRequest::new()
    };
    assert_eq!(request, expected);
}

#[test]
fn search_request_is_lenient_where_the_rfc_is() {
    let request = SearchRequest::from_json(&json!({
        "SCHEMAS": [SEARCH_REQUEST_URN.to_uppercase()],
        "ExcludedAttributes": "members, meta",
        "SortBy": "userName",
        "SORTORDER": "DESCENDING",
        "startindex": -4,
        "Count": "-1",
        "cursor": "",
        "filter": null
    }))
    .unwrap();
    let expected = SearchRequest {
        excluded_attributes: vec!["members, meta".into()],
        sort_by: Some("userName".into()),
        sort_order: Some(SortOrder::Descending),
        start_index: Some(1),
        count: Some(0),
        cursor: Some(String::new()),
        ..SearchRequest::new()
    };
    assert_eq!(request, expected);
    // JSON numbers with an integral value are integers; huge ones are
    // refused, not clamped.
    let numbers = SearchRequest::from_json(&json!({"count": 10.0, "startIndex": -1e3})).unwrap();
    assert_eq!((numbers.count, numbers.start_index), (Some(10), Some(1)));
    for huge in [
        json!({"count": 1e30}),
        json!({"startIndex": -1e30}),
        json!({"count": 18446744073709551615_u64}),
    ] {
        let error = SearchRequest::from_json(&huge).unwrap_err();
        assert_eq!(error.status, 400, "{huge}");
        assert!(error.detail.contains("out of range"), "{}", error.detail);
    }
    // `schemas` may be left out: the endpoint already says what this is.
    assert_eq!(
        SearchRequest::from_json(&json!({})).unwrap(),
        SearchRequest::new()
    );
}

#[test]
fn search_request_round_trips() {
    let request = SearchRequest {
        attributes: vec!["userName".into()],
        excluded_attributes: vec!["emails".into()],
        filter: Some("userName pr".into()),
        sort_by: Some("meta.created".into()),
        sort_order: Some(SortOrder::Descending),
        start_index: Some(11),
        count: Some(5),
        cursor: Some("abc".into()),
        ..SearchRequest::new()
    };
    let wire = serde_json::to_value(&request).unwrap();
    assert_eq!(
        wire,
        json!({
            "schemas": [SEARCH_REQUEST_URN],
            "attributes": ["userName"],
            "excludedAttributes": ["emails"],
            "filter": "userName pr",
            "sortBy": "meta.created",
            "sortOrder": "descending",
            "startIndex": 11,
            "count": 5,
            "cursor": "abc"
        })
    );
    assert_eq!(
        serde_json::from_value::<SearchRequest>(wire).unwrap(),
        request
    );
    assert_eq!(
        serde_json::to_value(SearchRequest::new()).unwrap(),
        json!({"schemas": [SEARCH_REQUEST_URN]})
    );
}

fn check_search_error(body: Value, scim_type: ScimType, expected_detail: &str) {
    let error = SearchRequest::from_json(&body).expect_err("expected an error");
    assert_eq!(error.status, 400, "{body}");
    assert_eq!(error.scim_type, Some(scim_type), "{body}: {error}");
    assert!(
        error.detail.contains(expected_detail),
        "{body}: {:?} lacks {expected_detail:?}",
        error.detail
    );
    // serde's path gives the same error text.
    let serde_error = serde_json::from_value::<SearchRequest>(body).unwrap_err();
    assert!(
        serde_error.to_string().contains(expected_detail),
        "{serde_error}"
    );
}

#[test]
fn search_request_errors_name_the_member() {
    use ScimType::{InvalidSyntax, InvalidValue};
    check_search_error(
        json!([]),
        InvalidSyntax,
        "SearchRequest must be a JSON object, got an array",
    );
    check_search_error(
        json!({"fitler": "userName pr"}),
        InvalidSyntax,
        "SearchRequest: unknown member 'fitler'; expected one of schemas, attributes",
    );
    check_search_error(
        json!({"count": 1, "COUNT": 2}),
        InvalidSyntax,
        "member 'count' appears twice",
    );
    check_search_error(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]}),
        InvalidSyntax,
        "schemas must be an array listing 'urn:ietf:params:scim:api:messages:2.0:SearchRequest'",
    );
    check_search_error(
        json!({"count": "ten"}),
        InvalidValue,
        "count must be an integer, got 'ten'",
    );
    check_search_error(
        json!({"count": 2.5}),
        InvalidValue,
        "count must be an integer, got 2.5",
    );
    check_search_error(
        json!({"startIndex": true}),
        InvalidValue,
        "startIndex must be an integer, got a boolean",
    );
    check_search_error(
        json!({"sortOrder": "up"}),
        InvalidValue,
        "sortOrder must be 'ascending' or 'descending', got 'up'",
    );
    check_search_error(
        json!({"filter": 7}),
        InvalidValue,
        "filter must be a string, got a number",
    );
    check_search_error(
        json!({"attributes": ["userName", 3]}),
        InvalidValue,
        "attributes[1] must be a string",
    );
    check_search_error(
        json!({"excludedAttributes": {}}),
        InvalidValue,
        "excludedAttributes must be an array of strings",
    );
}

#[test]
fn search_request_resolves_against_the_registry() {
    let registry = SchemaRegistry::builtin();
    let user_type = registry.resource_type("User").unwrap();
    let request = SearchRequest::from_json(&json!({
        "attributes": ["userName"],
        "sortBy": "name.familyName",
        "startIndex": 3,
        "count": 5000
    }))
    .unwrap();
    let paging = request.paging(100, 200);
    assert_eq!((paging.start_index, paging.count), (3, 200));
    let (key, order) = request.sort(&registry, user_type).unwrap().unwrap();
    assert_eq!(key.canonical_path(), "name.familyName");
    assert_eq!(order, SortOrder::Ascending);
    let projection = request.projection(&registry, user_type).unwrap();
    assert!(!projection.is_default());
    let mut resource = json!({"schemas": [], "id": "1", "userName": "u", "title": "t"});
    projection.apply(&registry, user_type, &mut resource);
    assert_eq!(resource, json!({"schemas": [], "id": "1", "userName": "u"}));

    let no_sort = SearchRequest::from_json(&json!({"sortOrder": "descending"})).unwrap();
    assert_eq!(no_sort.sort(&registry, user_type).unwrap(), None);
    let bad_sort = SearchRequest::from_json(&json!({"sortBy": "usrName"})).unwrap();
    assert!(bad_sort
        .sort(&registry, user_type)
        .unwrap_err()
        .detail
        .contains("did you mean 'userName'"));
}

// ---------------------------------------------------------------------------
// Bulk
// ---------------------------------------------------------------------------

/// After RFC 7644 section 3.7.1, with member names in odd case.
fn bulk_body() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "failOnErrors": 1,
        "Operations": [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": "qwerty",
                "data": {
                    "schemas": ["urn:ietf:params:scim:core:2.0:User"],
                    "userName": "Alice"
                }
            },
            {
                "Method": "put",
                "PATH": "/Users/b7c14771-226c-4d05-8860-134711653041",
                "Version": "W/\"3694e05e9dff591\"",
                "Data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "Bob"}
            },
            {
                "method": "PATCH",
                "path": "/Groups/bulkId:ytrewq",
                "data": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "members", "value": [{"value": "bulkId:qwerty"}]}]
                }
            },
            {"method": "Delete", "path": "/Users/e9025315", "version": "W/\"0ee8add0a938e1a\""}
        ]
    })
}

#[test]
fn bulk_request_reads_the_rfc_example() {
    let request = BulkRequest::from_json(&bulk_body()).unwrap();
    assert_eq!(request.fail_on_errors, Some(1));
    let methods: Vec<BulkMethod> = request.operations.iter().map(|op| op.method).collect();
    assert_eq!(
        methods,
        [
            BulkMethod::Post,
            BulkMethod::Put,
            BulkMethod::Patch,
            BulkMethod::Delete
        ]
    );
    let put = &request.operations[1];
    assert_eq!(put.path, "/Users/b7c14771-226c-4d05-8860-134711653041");
    assert_eq!(put.version.as_deref(), Some("W/\"3694e05e9dff591\""));
    assert_eq!(put.data.as_ref().unwrap()["userName"], "Bob");
    assert_eq!(request.operations[0].bulk_id.as_deref(), Some("qwerty"));
    assert_eq!(request.operations[3].data, None);

    // Through serde, and back to the wire in canonical case.
    let via_serde: BulkRequest = serde_json::from_value(bulk_body()).unwrap();
    assert_eq!(via_serde, request);
    let wire = serde_json::to_value(&request).unwrap();
    assert_eq!(wire["Operations"][1]["method"], "PUT");
    assert_eq!(wire["Operations"][1]["version"], "W/\"3694e05e9dff591\"");
    assert_eq!(BulkRequest::from_json(&wire).unwrap(), request);
}

fn check_bulk_error(edit: impl Fn(&mut Value), scim_type: ScimType, expected_detail: &str) {
    let mut body = bulk_body();
    edit(&mut body);
    let error = BulkRequest::from_json(&body).expect_err("expected an error");
    assert_eq!(error.status, 400);
    assert_eq!(error.scim_type, Some(scim_type), "{error}");
    assert!(
        error.detail.contains(expected_detail),
        "{:?} lacks {expected_detail:?}",
        error.detail
    );
}

#[test]
fn bulk_request_errors_name_the_operation() {
    use ScimType::{InvalidSyntax, InvalidValue};
    let operation = |index: usize, edit: fn(&mut serde_json::Map<String, Value>)| {
        move |body: &mut Value| edit(body["Operations"][index].as_object_mut().unwrap())
    };
    check_bulk_error(
        operation(1, |op| {
            op.remove("Method");
        }),
        InvalidSyntax,
        "Operations[1]: 'method' is required",
    );
    check_bulk_error(
        operation(2, |op| {
            op.insert("method".into(), json!("GET"));
        }),
        InvalidValue,
        "Operations[2]: method must be POST, PUT, PATCH or DELETE, got 'GET'",
    );
    check_bulk_error(
        operation(2, |op| {
            op.insert("method".into(), json!(1));
        }),
        InvalidValue,
        "Operations[2]: method must be a string, got a number",
    );
    check_bulk_error(
        operation(0, |op| {
            op.remove("bulkId");
        }),
        InvalidSyntax,
        "Operations[0]: 'bulkId' is required for POST",
    );
    check_bulk_error(
        operation(1, |op| {
            op.remove("Data");
        }),
        InvalidSyntax,
        "Operations[1]: 'data' is required for PUT",
    );
    check_bulk_error(
        operation(2, |op| {
            op.insert("data".into(), json!("[]"));
        }),
        InvalidValue,
        "Operations[2].data: must be an object, got a string",
    );
    check_bulk_error(
        operation(3, |op| {
            op.insert("path".into(), json!("Users/e9025315"));
        }),
        InvalidValue,
        "Operations[3].path: must start with '/'",
    );
    check_bulk_error(
        operation(3, |op| {
            op.remove("path");
        }),
        InvalidSyntax,
        "Operations[3]: 'path' is required",
    );
    check_bulk_error(
        operation(2, |op| {
            op.insert("bulkId".into(), json!("qwerty"));
        }),
        InvalidValue,
        "Operations[2].bulkId: 'qwerty' is already used by Operations[0]",
    );
    check_bulk_error(
        operation(2, |op| {
            op.insert("bulkId".into(), json!(""));
        }),
        InvalidValue,
        "Operations[2].bulkId: must not be empty",
    );
    check_bulk_error(
        operation(1, |op| {
            op.insert("response".into(), json!({}));
        }),
        InvalidSyntax,
        "Operations[1]: unknown member 'response'",
    );
    check_bulk_error(
        |body| body["Operations"][0] = json!("POST /Users"),
        InvalidSyntax,
        "Operations[0] must be a JSON object, got a string",
    );
    check_bulk_error(
        |body| body["failOnErrors"] = json!(0),
        InvalidValue,
        "failOnErrors must be a positive integer, got 0",
    );
    check_bulk_error(
        |body| {
            body.as_object_mut().unwrap().remove("Operations");
        },
        InvalidSyntax,
        "'Operations' is required",
    );
    check_bulk_error(
        |body| body["Operations"] = json!({}),
        InvalidSyntax,
        "Operations must be an array, got an object",
    );
}

#[test]
fn bulk_request_operation_limit_is_413() {
    let request = BulkRequest::from_json(&bulk_body()).unwrap();
    assert!(request.check_max_operations(4).is_ok());
    let error = request.check_max_operations(3).unwrap_err();
    assert_eq!(error.status, 413);
    assert_eq!(error.scim_type, None);
    assert!(error.detail.contains("4 operations"), "{}", error.detail);
    assert!(
        error.detail.contains("(maxOperations) is 3"),
        "{}",
        error.detail
    );
}

#[test]
fn bulk_response_wire_form() {
    let request = BulkRequest::from_json(&bulk_body()).unwrap();
    let response = BulkResponse::new(vec![
        BulkOperationResponse::success(
            &request.operations[0],
            201,
            Some("https://example.com/v2/Users/92b725cd".into()),
            Some("W/\"oY4m4wn58tkVjJxK\"".into()),
            None,
        ),
        BulkOperationResponse::failure(
            &request.operations[1],
            &ScimError::invalid_syntax("userName must be a string"),
        ),
        BulkOperationResponse::failure(
            &request.operations[3],
            &ScimError::status(412, "version mismatch"),
        ),
    ]);
    let wire = serde_json::to_value(&response).unwrap();
    assert_eq!(
        wire,
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"],
            "Operations": [
                {
                    "method": "POST",
                    "bulkId": "qwerty",
                    "version": "W/\"oY4m4wn58tkVjJxK\"",
                    "location": "https://example.com/v2/Users/92b725cd",
                    "status": "201"
                },
                {
                    "method": "PUT",
                    "status": "400",
                    "response": {
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                        "status": "400",
                        "scimType": "invalidSyntax",
                        "detail": "userName must be a string"
                    }
                },
                {
                    "method": "DELETE",
                    "status": "412",
                    "response": {
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                        "status": "412",
                        "detail": "version mismatch"
                    }
                }
            ]
        })
    );
    assert_eq!(
        serde_json::from_value::<BulkResponse>(wire).unwrap(),
        response
    );
}

// ---------------------------------------------------------------------------
// ServiceProviderConfig and Error
// ---------------------------------------------------------------------------

#[test]
fn service_provider_config_wire_form() {
    let limits = ServiceProviderLimits {
        max_bulk_operations: 1000,
        max_payload_size: 1_048_576,
        max_results: 200,
        default_page_size: 100,
        max_page_size: 200,
        cursor_paging: true,
        cursor_timeout: Some(3600),
    };
    let config = ServiceProviderConfig::new(&limits);
    let wire = serde_json::to_value(&config).unwrap();
    assert_eq!(
        wire,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": {"supported": true},
            "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1_048_576},
            "filter": {"supported": true, "maxResults": 200},
            "changePassword": {"supported": false},
            "sort": {"supported": true},
            "etag": {"supported": true},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication with a bearer token in the Authorization header.",
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "primary": true
            }],
            "pagination": {
                "cursor": true,
                "index": true,
                "defaultPaginationMethod": "index",
                "defaultPageSize": 100,
                "maxPageSize": 200,
                "cursorTimeout": 3600
            }
        })
    );
    assert_eq!(
        serde_json::from_value::<ServiceProviderConfig>(wire).unwrap(),
        config
    );
    let no_cursor = ServiceProviderConfig::new(&ServiceProviderLimits {
        cursor_paging: false,
        ..limits
    });
    let pagination = serde_json::to_value(no_cursor.pagination).unwrap();
    assert_eq!(pagination["cursor"], false);
    assert_eq!(pagination.get("cursorTimeout"), None);
}

#[test]
fn error_response_is_unchanged() {
    let error = ScimError::invalid_value("count must be an integer, got 'x'");
    assert_eq!(
        serde_json::to_value(error.to_response()).unwrap(),
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "400",
            "scimType": "invalidValue",
            "detail": "count must be an integer, got 'x'"
        })
    );
}

#[test]
fn error_details_are_bounded() {
    let huge = "x".repeat(50_000);
    let error = ScimError::invalid_value(format!("sortBy: unknown attribute '{huge}'"));
    let detail = error.to_response().detail;
    assert!(detail.chars().count() < 2100, "{} characters", detail.len());
    assert!(detail.starts_with("sortBy: unknown attribute 'xxx"));
    assert!(
        detail.ends_with("... (48028 more characters)"),
        "{}",
        &detail[1990..]
    );
    // Multi-byte characters are cut on a boundary.
    let error = ScimError::invalid_value("é".repeat(3000));
    assert!(error
        .to_response()
        .detail
        .ends_with("... (1000 more characters)"));
}

#[test]
fn patch_operations_and_attribute_paths_are_bounded() {
    use muster_scim::patch::MAX_PATCH_OPERATIONS;
    let operation = json!({"op": "add", "path": "emails", "value": [{"value": "a@b.c"}]});
    let body = |count: usize| {
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
               "Operations": vec![operation.clone(); count]})
    };
    assert!(muster_scim::PatchOp::from_json(&body(MAX_PATCH_OPERATIONS)).is_ok());
    let error = muster_scim::PatchOp::from_json(&body(MAX_PATCH_OPERATIONS + 1)).unwrap_err();
    assert_eq!(error.status, 413);
    assert!(error.detail.contains("at most 1000"), "{}", error.detail);
    // A megabyte of attribute name is refused before any "did you mean".
    let error = muster_scim::AttrPath::parse(&"a".repeat(1_000_000)).unwrap_err();
    assert!(
        error.detail.contains("at most 512 bytes"),
        "{}",
        error.detail
    );
    assert!(muster_scim::AttrPath::parse(&"a".repeat(512)).is_ok());
}
