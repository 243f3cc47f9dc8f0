//! Cross-site requests (docs/SECURITY.md, "Other web sites"): a browser sends the page's
//! `Origin` with every WebSocket upgrade and every cross-site request, and it does not ask before
//! a WebSocket upgrade or a "simple" POST. So every request whose `Origin` is neither the
//! server's own (the request's `Host`) nor in `server.allowed_origins` is refused with 403 before
//! any handler runs, on `/ws`, `/socket.io/` and REST alike. Requests without an `Origin` (apps,
//! tools, a browser's own navigation) are unaffected. An allowed origin also gets the CORS answers
//! a browser needs to read REST answers and long-poll (`cors`).

use std::sync::Arc;

use actix_cors::Cors;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{RequestHead, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};

use super::error::ApiError;
use crate::protocol::{ErrorCode, WireError};

/// The origins allowed besides the server's own.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    listed: Vec<String>,
    any: bool,
}

impl Origins {
    /// From the setting's list: exact origins (`https://till.example:8443`), or `"*"` for any.
    pub fn new<'a>(listed: impl IntoIterator<Item = &'a String>) -> Self {
        let mut origins = Self::default();
        for origin in listed {
            if origin == "*" {
                origins.any = true;
            } else {
                origins.listed.push(normalise(origin));
            }
        }
        origins
    }

    /// Whether a request with this head may proceed: no `Origin`, the server's own, or a listed
    /// one.
    pub fn permit(&self, head: &RequestHead) -> bool {
        match head.headers().get(header::ORIGIN) {
            // A browser sends no Origin with a GET such as an image's; it says where the request
            // comes from in Sec-Fetch-Site. Only following a link (a navigation) may cross sites.
            None => self.any || !cross_site_subresource(head),
            Some(origin) => self.permits(origin, head),
        }
    }

    /// Whether `origin` may make requests like this one (its `Host` is the server's name as the
    /// browser used it).
    fn permits(&self, origin: &HeaderValue, head: &RequestHead) -> bool {
        let Ok(origin) = origin.to_str() else { return false };
        if self.any {
            return true;
        }
        let origin = normalise(origin);
        let own = head.headers().get(header::HOST).and_then(|host| host.to_str().ok());
        own.is_some_and(|host| same_host(&origin, host)) || self.listed.contains(&origin)
    }

    /// The CORS middleware for the allowed origins: preflights answered, and the headers a
    /// browser needs on every answer to an allowed origin.
    pub fn cors(&self) -> Cors {
        let origins = Arc::new(self.clone());
        Cors::default()
            .allowed_origin_fn(move |origin, head| origins.permits(origin, head))
            .allow_any_method()
            .allow_any_header()
            .supports_credentials()
            .max_age(3600)
    }
}

/// Whether a browser says this request without an Origin comes from another site's page and is
/// not a navigation (an image, a script, a frame's resource).
fn cross_site_subresource(head: &RequestHead) -> bool {
    let said =
        |name: &str| head.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    said("sec-fetch-site").as_deref() == Some("cross-site")
        && said("sec-fetch-mode").as_deref() != Some("navigate")
}

/// An origin as compared: lower case, without a trailing slash or the scheme's default port.
fn normalise(origin: &str) -> String {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    for (scheme, port) in [("http://", ":80"), ("https://", ":443")] {
        if origin.starts_with(scheme)
            && let Some(bare) = origin.strip_suffix(port)
        {
            return bare.to_owned();
        }
    }
    origin
}

/// Whether the origin names the host the request was sent to (`Host`, port included; a default
/// port may be written or left out on either side).
fn same_host(origin: &str, host: &str) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let host = host.trim().to_ascii_lowercase();
    let default = match scheme {
        "http" | "ws" => ":80",
        "https" | "wss" => ":443",
        _ => return false,
    };
    authority == host || host.strip_suffix(default) == Some(authority)
}

/// The middleware: refuses a request from an origin that is not allowed with 403.
pub async fn guard<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let allowed = match req.app_data::<actix_web::web::Data<Origins>>() {
        Some(origins) => origins.permit(req.head()),
        None => false,
    };
    if allowed {
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    }
    let origin = req.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok()).unwrap_or("?").to_owned();
    tracing::info!(%origin, path = req.path(), "refused a request from another site's page");
    let error = WireError::new(
        ErrorCode::InsufficientPermissions,
        format!("Requests from pages at {origin} are not allowed here (server.allowed_origins)"),
    );
    let response: HttpResponse =
        ApiError::with_status(error, actix_web::http::StatusCode::FORBIDDEN).error_response();
    Ok(req.into_response(response).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn head(host: &str, origin: Option<&str>) -> RequestHead {
        let mut req = TestRequest::default().insert_header((header::HOST, host));
        if let Some(origin) = origin {
            req = req.insert_header((header::ORIGIN, origin));
        }
        req.to_http_request().head().clone()
    }

    #[test]
    fn no_origin_and_the_servers_own_are_allowed() {
        let origins = Origins::new(&[]);
        assert!(origins.permit(&head("shop:8080", None)));
        assert!(origins.permit(&head("shop:8080", Some("http://shop:8080"))));
        assert!(origins.permit(&head("SHOP:8080", Some("http://shop:8080/"))));
        assert!(origins.permit(&head("shop", Some("http://shop:80"))));
        assert!(origins.permit(&head("shop:443", Some("https://shop"))));
    }

    #[test]
    fn another_sites_origin_is_refused_unless_listed() {
        let origins = Origins::new(&[]);
        assert!(!origins.permit(&head("shop:8080", Some("http://evil.example"))));
        assert!(!origins.permit(&head("shop:8080", Some("http://shop:8081"))));
        assert!(!origins.permit(&head("shop:8080", Some("null"))));
        assert!(!origins.permit(&head("shop:8080", Some("http://shop:8080.evil.example"))));
        let mut image = TestRequest::default().insert_header((header::HOST, "shop:8080"));
        image = image
            .insert_header(("sec-fetch-site", "cross-site"))
            .insert_header(("sec-fetch-mode", "no-cors"));
        assert!(!origins.permit(image.to_http_request().head()), "another site's image");
        let link = TestRequest::default()
            .insert_header((header::HOST, "shop:8080"))
            .insert_header(("sec-fetch-site", "cross-site"))
            .insert_header(("sec-fetch-mode", "navigate"));
        assert!(origins.permit(link.to_http_request().head()), "a link followed from another site");
        let listed = Origins::new(&["https://till.example:8443".to_owned()]);
        assert!(listed.permit(&head("shop:8080", Some("https://till.example:8443"))));
        assert!(!listed.permit(&head("shop:8080", Some("https://till.example"))));
        let any = Origins::new(&["*".to_owned()]);
        assert!(any.permit(&head("shop:8080", Some("http://evil.example"))));
    }
}
