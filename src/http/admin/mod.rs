//! `/admin`: the shop admin's page (PROTOCOL.md section 12), served from the binary with no
//! build step and nothing from elsewhere: `page/` holds its HTML, CSS and script, written here,
//! with no libraries.
//!
//! - `GET /admin/` the page, `GET /admin/app.js` and `/admin/app.css` its script and style.
//! - `GET /admin/events` (admin token) the live view as server-sent events: `fleet` (devices
//!   with role, priority, activity, last sign of life, sync lag and transport; master and term;
//!   health; the latest elections and audit entries) whenever it changes, and `stats` (sessions
//!   and messages per second) every second. The page reads it with `fetch`, so the token goes in
//!   the `Authorization` header and never into a URL.
//!
//! The actions (a manual election, demoting the master) are the REST endpoints the page calls
//! with the same token.

mod feed;

use actix_web::http::header;
use actix_web::{HttpResponse, web};

use super::auth::AdminAuth;
use super::error::answers::{Forbidden, Unauthorized};
use super::routes::Routes;
use crate::http::state::AppState;

/// The page and its files, as they are in `page/`.
const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/app.css");

/// The admin page's API description.
#[derive(utoipa::OpenApi)]
#[openapi(paths(events))]
pub struct Api;

/// Registers the live feed (a REST route, described).
pub fn routes(r: &mut Routes<'_>) {
    r.at("/admin/events", |p| p.get(events));
}

/// Registers the page and its files (not REST: not in the API description).
pub fn page(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(|| async { redirect("/admin/") }))
        .route("/admin/", web::get().to(|| async { file(INDEX, "text/html; charset=utf-8") }))
        .route("/admin/app.js", web::get().to(|| async { file(SCRIPT, "text/javascript; charset=utf-8") }))
        .route("/admin/app.css", web::get().to(|| async { file(STYLE, "text/css; charset=utf-8") }));
}

fn redirect(to: &'static str) -> HttpResponse {
    HttpResponse::PermanentRedirect().insert_header((header::LOCATION, to)).finish()
}

fn file(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        // The page asks for nothing outside the server.
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// One server-sent event of the admin feed.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct AdminEvent {
    /// `fleet` or `stats`.
    #[schema(pattern = "^(fleet|stats)$")]
    event: String,
    /// The event's JSON object.
    data: String,
}

#[utoipa::path(
    get,
    path = "/admin/events",
    tag = "admin",
    summary = "The admin page's live view, as server-sent events",
    description = "`event: fleet` with the devices (role, priority, active, last seen, sync lag, transport), the master and term, health, and the latest elections and audit entries, sent at once and whenever it changes; `event: stats` with the sessions by transport and the messages received and sent per second, every second.",
    responses((status = 200, description = "The event stream, until the client or the server closes it", content_type = "text/event-stream", body = AdminEvent), Unauthorized, Forbidden),
    security(("admin_token" = []))
)]
async fn events(_auth: AdminAuth, app: web::Data<AppState>) -> HttpResponse {
    let stream = feed::Feed::start(app.into_inner()).await;
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // No proxy buffering: every event as it comes.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(stream)
}
