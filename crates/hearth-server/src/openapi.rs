//! The OpenAPI document. Paths come from the router (`api_router` in lib.rs, one declaration per
//! route, each handler's `#[utoipa::path]`); this module adds what every operation shares: the
//! bearer scheme and the error responses its shape implies, all with the [`ErrorBody`] schema.

use hearth_core::api::ErrorBody;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr};
use utoipa::Modify;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Hearth API", description = "Self-hosted AI workspace. Authenticate with `Authorization: Bearer <access token or API key>`. \
        API keys carry scopes (`read`, `chat`, `knowledge`, `admin`); a key without the scope an operation needs gets 403."),
    components(schemas(hearth_core::api::ErrorBody, hearth_core::chat::api::RunEvent)),
    modifiers(&BearerAuth),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The error responses every operation of a shape can give, with why.
fn implied(op: &Operation, path_has_ids: bool) -> Vec<(&'static str, &'static str)> {
    let mut statuses = vec![("500", "Internal error (the body names the request id)")];
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        statuses.push(("401", "Missing, invalid or ended credentials"));
        statuses.push((
            "403",
            "The caller's role or API key scope does not allow this",
        ));
    }
    if op.request_body.is_some() {
        statuses.push(("400", "Malformed body, or a field out of its limits"));
        statuses.push(("413", "Body over `server.body_limit_bytes`"));
        statuses.push(("415", "Body is not `application/json`"));
        statuses.push(("422", "A field is missing or of the wrong type"));
    }
    let has_query = op.parameters.as_ref().is_some_and(|ps| {
        ps.iter()
            .any(|p| matches!(p.parameter_in, ParameterIn::Query))
    });
    if has_query {
        statuses.push(("400", "A query parameter is malformed or out of its limits"));
    }
    if path_has_ids {
        statuses.push(("404", "No such resource of the caller's"));
    }
    statuses
}

fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(
                    <ErrorBody as utoipa::ToSchema>::name(),
                )))
                .build(),
        )
        .build()
}

/// Completes the document built from the router: every operation lists the error statuses its
/// shape implies, and every error response (also those a handler declares) has the error schema.
pub fn finish(api: &mut OpenApi) {
    for (path, item) in api.paths.paths.iter_mut() {
        let path_has_ids = path.contains('{');
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for op in ops.into_iter().flatten() {
            // Handler names repeat across modules (`list`, `create`): the tag makes them unique.
            if let (Some(id), Some(tag)) =
                (&op.operation_id, op.tags.as_ref().and_then(|t| t.first()))
            {
                op.operation_id = Some(format!("{}_{id}", tag.replace('-', "_")));
            }
            for (status, description) in implied(op, path_has_ids) {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::T(error_response(description)));
            }
            for (status, response) in op.responses.responses.iter_mut() {
                let is_error = status.starts_with('4') || status.starts_with('5');
                if let (true, RefOr::T(r)) = (is_error, response) {
                    if r.content.is_empty() {
                        let description = if r.description.is_empty() {
                            "Error"
                        } else {
                            r.description.as_str()
                        };
                        *r = error_response(description);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_web_uis_copy_of_the_document_is_current() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../web/src/api/openapi.json"
        );
        let committed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).expect("web/src/api/openapi.json"))
                .expect("json");
        let current = serde_json::to_value(crate::openapi()).expect("json");
        assert!(
            committed == current,
            "web/src/api/openapi.json is stale: run scripts/gen-api-types.sh"
        );
    }

    #[test]
    fn every_operation_lists_its_errors_with_the_error_schema() {
        let doc = crate::openapi();
        let json = serde_json::to_value(&doc).expect("json");
        let paths = json["paths"].as_object().expect("paths");
        assert!(paths.len() > 40, "the router's routes are documented");
        let text = json.to_string();
        for name in text.split("\"#/components/schemas/").skip(1) {
            let name = name.split('"').next().unwrap_or_default();
            assert!(
                json["components"]["schemas"][name].is_object(),
                "{name} is referenced but not in the components"
            );
        }
        let mut ids = std::collections::HashSet::new();
        for (path, ops) in paths {
            for (method, op) in ops.as_object().expect("ops") {
                let id = op["operationId"].as_str().expect("an operation id");
                assert!(ids.insert(id.to_owned()), "operation id {id} repeats");
                let responses = op["responses"].as_object().expect("responses");
                assert!(responses.contains_key("500"), "{method} {path}");
                if op.get("security").is_some() {
                    assert!(responses.contains_key("401"), "{method} {path}");
                }
                for (status, response) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        let schema = &response["content"]["application/json"]["schema"]["$ref"];
                        assert!(
                            schema.as_str().is_some_and(
                                |s| s.ends_with("/ErrorBody") || s.ends_with("/Status")
                            ),
                            "{method} {path} {status}: {response}"
                        );
                    }
                }
            }
        }
    }
}
