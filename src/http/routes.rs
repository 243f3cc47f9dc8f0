//! The REST routes, registered through one table: each resource module lists its paths and
//! methods here, and what is listed is exactly what is registered. The same listing, taken
//! without registering (`table`), is what the API description is checked against.

use actix_web::http::Method;
use actix_web::{FromRequest, Handler, Responder, ResponseError, web};

use super::error::ApiError;
use crate::protocol::{ErrorCode, WireError};

/// Where a module's routes go: into the server, or only into the listing.
pub struct Routes<'a> {
    cfg: Option<&'a mut web::ServiceConfig>,
    listed: Vec<(Method, &'static str)>,
}

/// One path and the methods it answers.
pub struct Resource {
    path: &'static str,
    resource: actix_web::Resource,
    methods: Vec<Method>,
}

impl<'a> Routes<'a> {
    /// Routes registered into `cfg`.
    pub fn into(cfg: &'a mut web::ServiceConfig) -> Self {
        Self { cfg: Some(cfg), listed: Vec::new() }
    }

    /// Routes listed only.
    pub fn listing() -> Routes<'static> {
        Routes { cfg: None, listed: Vec::new() }
    }

    /// The path `path` with the methods `build` gives it (any other method is answered
    /// `METHOD_NOT_ALLOWED`).
    pub fn at(&mut self, path: &'static str, build: impl FnOnce(Resource) -> Resource) -> &mut Self {
        let built = build(Resource { path, resource: web::resource(path), methods: Vec::new() });
        let resource = built.resource.default_service(not_allowed(&built.methods));
        self.listed.extend(built.methods.into_iter().map(|method| (method, built.path)));
        if let Some(cfg) = self.cfg.as_deref_mut() {
            cfg.service(resource);
        }
        self
    }

    /// Every method and path listed, in the order they were.
    pub fn listed(self) -> Vec<(Method, &'static str)> {
        self.listed
    }
}

impl Resource {
    fn method<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        self.methods.push(method);
        self
    }

    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::GET, handler)
    }

    pub fn post<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::POST, handler)
    }

    pub fn put<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::PUT, handler)
    }

    pub fn patch<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::PATCH, handler)
    }

    pub fn delete<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.method(Method::DELETE, handler)
    }
}

/// The answer to a method the path does not have: the JSON 405, with the `Allow` header that
/// RFC 9110 §15.5.6 requires, naming the methods it has.
fn not_allowed(methods: &[Method]) -> actix_web::Route {
    let allow = methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
    web::to(move || {
        let allow = allow.clone();
        async move {
            let mut response = ApiError::from(WireError::new(
                ErrorCode::MethodNotAllowed,
                "Method not allowed on this endpoint",
            ))
            .error_response();
            if let Ok(allow) = actix_web::http::header::HeaderValue::from_str(&allow) {
                response.headers_mut().insert(actix_web::http::header::ALLOW, allow);
            }
            response
        }
    })
}
