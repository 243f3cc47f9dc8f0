//! The API description (PROTOCOL.md section 12): `GET /openapi.json`, generated from the
//! handlers' `#[utoipa::path]` attributes and the body types' schemas, and the browsable page at
//! `/docs/`, whose assets are inside the binary.
//!
//! Each resource module describes its own paths (`cashier::Api`, `devices::Api`, …); this module
//! puts them together and adds the token schemes. `rest_routes` lists what the server registers,
//! and a test holds the two to each other.

use std::sync::LazyLock;

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_swagger_ui::SwaggerUi;

use super::error::RestError;
use super::{admin, cashier, devices, metrics, sync, system, tokens};
use crate::protocol::inbound::{MAX_ID_CHARS, MAX_LIMIT, MAX_NUMBER};

/// Where the description is served.
pub const DESCRIPTION_PATH: &str = "/openapi.json";

/// Where the browsable page is served.
pub const PAGE_PATH: &str = "/docs/";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "device-sync",
        description = "Keeps a shop's fleet of devices in step: stations and orders, the fleet and its \
            master, sync by REST, health and figures. Devices also hold sessions on `/ws` and \
            `/socket.io/`, which `docs/asyncapi.yaml` describes.",
    ),
    tags(
        (name = "stations", description = "Stations, their orders and the catalogue (document 002)"),
        (name = "fleet", description = "Devices, roles, manual elections, election and audit logs"),
        (name = "sync", description = "A device's offline queue pushed, changes pulled, sync status and state"),
        (name = "system", description = "Health, network status and the Prometheus figures"),
        (name = "admin", description = "The admin page's live feed (the page itself is at `/admin/`)"),
    ),
    // The shared error answers (`error::answers`) refer to it without collecting it.
    components(schemas(RestError))
)]
struct ApiDoc;

/// The whole description, built once.
static DESCRIPTION: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(build);

fn build() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi()
        .merge_from(cashier::Api::openapi())
        .merge_from(devices::Api::openapi())
        .merge_from(tokens::Api::openapi())
        .merge_from(sync::Api::openapi())
        .merge_from(system::Api::openapi())
        .merge_from(metrics::Api::openapi())
        .merge_from(admin::Api::openapi());
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "admin_token",
        bearer("The admin token (`auth.admin_token`, or the one written to `<data_dir>/admin-token`)"),
    );
    components.add_security_scheme(
        "device_token",
        bearer("The device token (`auth.device_token`); the admin token opens device endpoints too. Without a device token set, device endpoints are open."),
    );
    describe_every_answer(&mut doc);
    bound_every_parameter(&mut doc);
    doc
}

/// Every operation of the description, mutably.
fn operations(
    doc: &mut utoipa::openapi::OpenApi,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    doc.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
    })
}

/// The bounds the server holds every path and query parameter to, by name (the parameters of
/// the same name mean the same thing on every path; `Query` and the path checks enforce them),
/// the 400 an operation that takes input may answer when one is out of bounds, and the 415 of
/// one that takes a body.
fn bound_every_parameter(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::IntoResponses;
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::{ObjectBuilder, Type};

    let id =
        || ObjectBuilder::new().schema_type(Type::String).min_length(Some(1)).max_length(Some(MAX_ID_CHARS));
    let count = |min: i64, max: u64| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64)))
            .minimum(Some(min))
            .maximum(Some(max))
    };
    let invalid = super::error::answers::Invalid::responses();
    let not_json = super::error::answers::NotJson::responses();
    for operation in operations(doc) {
        let parameters = operation.parameters.iter_mut().flatten();
        let mut takes_input = operation.request_body.is_some();
        for parameter in parameters {
            takes_input = true;
            let utoipa::openapi::RefOr::T(parameter) = parameter else { continue };
            let schema = match (&parameter.parameter_in, parameter.name.as_str()) {
                (ParameterIn::Path | ParameterIn::Query, "id" | "device_id") => id(),
                (ParameterIn::Path, "index") => count(0, MAX_NUMBER),
                (ParameterIn::Query, "limit") => count(1, MAX_LIMIT),
                (ParameterIn::Query, "offset" | "since_seq") => count(0, MAX_NUMBER),
                _ => continue,
            };
            parameter.schema = Some(schema.into());
        }
        let bodies = operation.request_body.is_some().then_some(&not_json);
        if takes_input {
            for (status, answer) in invalid.iter().chain(bodies.into_iter().flatten()) {
                operation.responses.responses.entry(status.clone()).or_insert_with(|| answer.clone());
            }
        }
    }
}

/// OpenAPI requires a description on every answer: one a handler gave none gets its status's
/// reason phrase ("OK", "Created").
fn describe_every_answer(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::RefOr;
    for operation in operations(doc) {
        for (status, answer) in operation.responses.responses.iter_mut() {
            if let RefOr::T(answer) = answer
                && answer.description.is_empty()
            {
                let reason = status
                    .parse::<u16>()
                    .ok()
                    .and_then(|code| actix_web::http::StatusCode::from_u16(code).ok())
                    .and_then(|code| code.canonical_reason());
                answer.description = reason.unwrap_or("The answer").to_owned();
            }
        }
    }
}

fn bearer(description: &str) -> SecurityScheme {
    SecurityScheme::Http(
        HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(description)).build(),
    )
}

/// The API description.
pub fn description() -> &'static utoipa::openapi::OpenApi {
    &DESCRIPTION
}

/// Registers `/openapi.json` and the page at `/docs/` (`/docs` leads there).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/docs",
        web::get().to(|| async {
            HttpResponse::PermanentRedirect().insert_header(("location", PAGE_PATH)).finish()
        }),
    )
    .service(SwaggerUi::new(format!("{PAGE_PATH}{{_:.*}}")).url(DESCRIPTION_PATH, description().clone()));
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Every operation the description lists, as (method, path).
    fn described() -> BTreeSet<(String, String)> {
        let mut listed = BTreeSet::new();
        for (path, item) in &description().paths.paths {
            let operations = [
                ("GET", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("DELETE", &item.delete),
                ("PATCH", &item.patch),
                ("HEAD", &item.head),
                ("OPTIONS", &item.options),
                ("TRACE", &item.trace),
            ];
            for (method, operation) in operations {
                if operation.is_some() {
                    listed.insert((method.to_owned(), path.clone()));
                }
            }
        }
        listed
    }

    #[test]
    fn the_description_lists_exactly_the_rest_routes_the_server_registers() {
        let registered: BTreeSet<(String, String)> = super::super::rest_routes()
            .into_iter()
            .map(|(m, p)| (m.as_str().to_owned(), p.to_owned()))
            .collect();
        let described = described();
        let undescribed: Vec<_> = registered.difference(&described).collect();
        let unregistered: Vec<_> = described.difference(&registered).collect();
        assert!(undescribed.is_empty(), "registered but not described: {undescribed:?}");
        assert!(unregistered.is_empty(), "described but not registered: {unregistered:?}");
        assert!(registered.len() > 20, "the route table lists {} routes", registered.len());
    }

    #[test]
    fn every_operation_names_its_tag_answers_and_token_scheme() {
        let doc = description();
        let schemes = &doc.components.as_ref().expect("components").security_schemes;
        assert!(schemes.contains_key("admin_token") && schemes.contains_key("device_token"));
        for (path, item) in &doc.paths.paths {
            for operation in
                [&item.get, &item.post, &item.put, &item.delete, &item.patch].into_iter().flatten()
            {
                let tags = operation.tags.as_deref().unwrap_or_default();
                assert_eq!(tags.len(), 1, "{path}: tags {tags:?}");
                let answers = &operation.responses.responses;
                assert!(answers.keys().any(|status| status.starts_with('2')), "{path}: no success answer");
                let open = ["/system/health", "/metrics"].contains(&path.as_str());
                let security = operation.security.as_deref().unwrap_or_default();
                assert_eq!(security.is_empty(), open, "{path}: security {}", serde_json::json!(security));
                if !open {
                    assert!(operation.responses.responses.contains_key("401"), "{path}: no 401");
                }
            }
        }
    }

    #[test]
    fn every_schema_an_operation_refers_to_is_defined() {
        let json = description().to_json().expect("the description serializes");
        let schemas = &description().components.as_ref().expect("components").schemas;
        let prefix = "#/components/schemas/";
        let mut rest = json.as_str();
        let mut checked = 0;
        while let Some(at) = rest.find(prefix) {
            let name_and_more = &rest[at + prefix.len()..];
            let end = name_and_more.find('"').unwrap_or(name_and_more.len());
            let name = &name_and_more[..end];
            assert!(schemas.contains_key(name), "{name} is referred to but not defined");
            checked += 1;
            rest = &name_and_more[end..];
        }
        assert!(checked > 10, "only {checked} references");
    }
}
