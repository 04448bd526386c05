//! Access control: which roles reach which route, enforced by a middleware on every route and
//! declared in the OpenAPI document from the same table, so the two cannot drift apart.
//!
//! For each request to a protected route, in this order: the key is read from
//! `Authorization: Bearer smk_…` and looked up by its hash (401 if missing, malformed, unknown or
//! revoked); the key's rate limit is counted (429); the key's role is checked against the route
//! and, for a merchant key, the merchant in the path against the key's own (403). Only then does
//! the handler run, with the [`Caller`] in the request's extensions. Finer checks that need data
//! (a lender reads only its own decisions) are the handler's.

use super::{ApiError, AppState, KeyProblem};
use crate::keys::{self, Caller, Role};
use actix_web::body::BoxBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpMessage, web};
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{self, ContentBuilder, Ref, ResponseBuilder};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No key needed (probes, the spec, Swagger UI); these routes are not wrapped.
    Open,
    /// Any valid key, whatever its role.
    AnyKey,
    /// A key of one of these roles. A merchant key reaches only the merchant its path names.
    Roles(&'static [Role]),
}

/// One route and who may call it.
#[derive(Debug, Clone, Copy)]
pub struct RouteAccess {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    /// What else the handler checks, for the spec and the README.
    pub note: Option<&'static str>,
}

const fn route(method: &'static str, path: &'static str, access: Access) -> RouteAccess {
    RouteAccess {
        method,
        path,
        access,
        note: None,
    }
}

use Role::{Admin, Lender, Merchant, Platform};

/// Every route of the API and who may call it: the one place access is decided.
pub const ROUTES: &[RouteAccess] = &[
    route("GET", "/healthz", Access::Open),
    route("GET", "/readyz", Access::Open),
    RouteAccess {
        method: "GET",
        path: "/metrics",
        access: Access::Roles(&[Admin]),
        note: Some(
            "Without a key on the separate metrics address (`metrics_bind`, `SMECREDIT_METRICS_BIND`) when one is set; \
             that address is meant for the scraper's network only.",
        ),
    },
    route("POST", "/v1/merchants", Access::Roles(&[Platform])),
    route(
        "GET",
        "/v1/merchants/{merchant_id}",
        Access::Roles(&[Platform, Lender]),
    ),
    route(
        "POST",
        "/v1/merchants/{merchant_id}/payments",
        Access::Roles(&[Platform]),
    ),
    route(
        "GET",
        "/v1/merchants/{merchant_id}/payments",
        Access::Roles(&[Platform]),
    ),
    route(
        "GET",
        "/v1/merchants/{merchant_id}/loans",
        Access::Roles(&[Platform]),
    ),
    route("GET", "/v1/features", Access::AnyKey),
    route(
        "GET",
        "/v1/merchants/{merchant_id}/features",
        Access::Roles(&[Lender, Merchant, Admin]),
    ),
    route(
        "GET",
        "/v1/merchants/{merchant_id}/eligibility",
        Access::Roles(&[Merchant]),
    ),
    route("POST", "/v1/scores", Access::Roles(&[Lender])),
    RouteAccess {
        method: "GET",
        path: "/v1/decisions/{decision_id}",
        access: Access::Roles(&[Lender, Admin]),
        note: Some(
            "A lender key reads only the decisions made by its own keys (those of its rotation chain); \
             another lender's decision is answered 404, as if it did not exist. An admin key reads every decision.",
        ),
    },
    route("POST", "/v1/loans", Access::Roles(&[Platform])),
    route("GET", "/v1/loans/{loan_id}", Access::Roles(&[Platform])),
    route(
        "POST",
        "/v1/loans/{loan_id}/outcome",
        Access::Roles(&[Platform]),
    ),
    route("GET", "/v1/models", Access::Roles(&[Admin])),
    route(
        "POST",
        "/v1/models/{version}/activate",
        Access::Roles(&[Admin]),
    ),
    route("GET", "/v1/keys", Access::Roles(&[Admin])),
    route("POST", "/v1/keys", Access::Roles(&[Admin])),
    route("POST", "/v1/keys/{key_id}/revoke", Access::Roles(&[Admin])),
    route("POST", "/v1/keys/{key_id}/rotate", Access::Roles(&[Admin])),
];

/// The access rule of a route; a route missing from [`ROUTES`] is a bug, found at start-up.
pub fn access_of(method: &str, path: &str) -> Access {
    ROUTES
        .iter()
        .find(|r| r.method == method && r.path == path)
        .map(|r| r.access)
        .unwrap_or_else(|| panic!("{method} {path} has no entry in api::auth::ROUTES"))
}

/// The middleware for one route: `web::get().to(handler).wrap(require("GET", path))`.
pub fn require(method: &str, path: &str) -> Authorize {
    let access = access_of(method, path);
    assert!(
        access != Access::Open,
        "{method} {path} is open and needs no key check"
    );
    Authorize { access }
}

/// The key in `Authorization: Bearer smk_…`.
fn presented_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized(KeyProblem::Missing))?;
    let malformed = ApiError::Unauthorized(KeyProblem::Malformed);
    let text = value.to_str().map_err(|_| malformed)?;
    let (scheme, key) = text
        .trim()
        .split_once(' ')
        .ok_or(ApiError::Unauthorized(KeyProblem::Malformed))?;
    let key = key.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || !keys::well_formed(key) {
        return Err(ApiError::Unauthorized(KeyProblem::Malformed));
    }
    Ok(key)
}

/// Whether the caller's role reaches a route whose path named `path_merchant`.
pub fn permit(
    caller: &Caller,
    access: Access,
    path_merchant: Option<&str>,
) -> Result<(), ApiError> {
    let roles = match access {
        Access::Open | Access::AnyKey => return Ok(()),
        Access::Roles(roles) => roles,
    };
    if !roles.contains(&caller.role) {
        return Err(ApiError::Forbidden(format!(
            "this route needs a key of role {}; this key is a {} key",
            roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" or "),
            caller.role
        )));
    }
    if caller.role == Role::Merchant {
        let own = caller.merchant_id.as_ref().map(|m| m.as_str());
        if path_merchant.is_none() || path_merchant != own {
            return Err(ApiError::Forbidden(
                "a merchant key reads only its own merchant".to_string(),
            ));
        }
    }
    Ok(())
}

async fn authorize(req: &ServiceRequest, access: Access) -> Result<Caller, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the app state is not registered")))?;
    let key = presented_key(req.headers())?;
    let caller = state
        .keys
        .authenticate(key)
        .await?
        .ok_or(ApiError::Unauthorized(KeyProblem::Invalid))?;
    // The request's span (the request log line) names the key by its public id, never the key.
    tracing::Span::current().record("key_id", caller.key_id.as_str());
    state
        .rate_limits
        .check(&caller)
        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    permit(&caller, access, req.match_info().get("merchant_id"))?;
    Ok(caller)
}

/// Middleware that lets a request through only with a key that reaches the route.
#[derive(Debug, Clone, Copy)]
pub struct Authorize {
    access: Access,
}

impl<S> Transform<S, ServiceRequest> for Authorize
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>
        + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Transform = AuthorizeService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(AuthorizeService {
            service: Rc::new(service),
            access: self.access,
        }))
    }
}

pub struct AuthorizeService<S> {
    service: Rc<S>,
    access: Access,
}

impl<S> Service<ServiceRequest> for AuthorizeService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>
        + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let access = self.access;
        Box::pin(async move {
            match authorize(&req, access).await {
                Ok(caller) => {
                    req.extensions_mut().insert(caller);
                    service.call(req).await
                }
                Err(e) => Ok(req.error_response(e)),
            }
        })
    }
}

/// The name of the security scheme in the spec.
pub const SCHEME: &str = "api_key";

/// A sentence saying who may call a route, for its description in the spec.
pub fn access_sentence(r: &RouteAccess) -> Option<String> {
    let roles = match r.access {
        Access::Open => return None,
        Access::AnyKey => "of any role".to_string(),
        Access::Roles(roles) => {
            let names: Vec<String> = roles
                .iter()
                .map(|role| match role {
                    Role::Merchant => {
                        "merchant (only for its own `merchant_id`; another merchant's is 403)"
                            .to_string()
                    }
                    other => other.as_str().to_string(),
                })
                .collect();
            format!("of role {}", names.join(" or "))
        }
    };
    let refusals = if r.access == Access::AnyKey {
        "401 without a valid key, 429 when its rate limit is spent"
    } else {
        "401 without a valid key, 403 for a key of another role, 429 when its rate limit is spent"
    };
    let mut s =
        format!("**Access:** an API key {roles} in `Authorization: Bearer smk_…` ({refusals}).");
    if let Some(note) = r.note {
        s.push(' ');
        s.push_str(note);
    }
    Some(s)
}

/// Declares the bearer scheme, and on every protected operation its roles (as the security
/// requirement's scopes, which OpenAPI 3.1 allows for role names), a sentence in its description
/// and the 401, 403 and 429 answers.
pub struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("smk_ and 64 hex digits")
                    .description(Some(
                        "An API key issued by `smecredit keys create` or `POST /v1/keys`, sent as \
                         `Authorization: Bearer smk_…`. Its role (platform, lender, merchant, admin) \
                         decides which routes it reaches; each operation lists the roles it accepts.",
                    ))
                    .build(),
            ),
        );
        for r in ROUTES {
            let Some(sentence) = access_sentence(r) else {
                continue;
            };
            let Some(item) = doc.paths.paths.get_mut(r.path) else {
                continue;
            };
            let operation = match r.method {
                "GET" => item.get.as_mut(),
                "POST" => item.post.as_mut(),
                _ => None,
            };
            let Some(op) = operation else { continue };
            let scopes: Vec<&str> = match r.access {
                Access::Roles(roles) => roles.iter().map(|r| r.as_str()).collect(),
                _ => vec![],
            };
            op.security = Some(vec![SecurityRequirement::new(SCHEME, scopes)]);
            op.description = Some(match op.description.take() {
                Some(d) if !d.is_empty() => format!("{d}\n\n{sentence}"),
                _ => sentence,
            });
            let problem = || {
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Problem")))
                    .build()
            };
            let mut answers = vec![
                (
                    "401",
                    ResponseBuilder::new()
                        .description("No API key, or one that is malformed, unknown or revoked")
                        .header(
                            "WWW-Authenticate",
                            openapi::header::HeaderBuilder::new()
                                .schema(Some(openapi::Object::with_type(openapi::Type::String)))
                                .description(Some("Bearer realm=\"smecredit\", with error=\"invalid_token\" for an unknown or revoked key"))
                                .build(),
                        )
                        .content("application/problem+json", problem())
                        .build(),
                ),
                (
                    "429",
                    ResponseBuilder::new()
                        .description("The key's rate limit is spent")
                        .header(
                            "Retry-After",
                            openapi::header::HeaderBuilder::new()
                                .schema(Some(openapi::Object::with_type(openapi::Type::Integer)))
                                .description(Some("Seconds to wait, rounded up"))
                                .build(),
                        )
                        .content("application/problem+json", problem())
                        .build(),
                ),
            ];
            if r.access != Access::AnyKey {
                answers.push((
                    "403",
                    ResponseBuilder::new()
                        .description(
                            "A valid key whose role (or merchant) does not reach this route",
                        )
                        .content("application/problem+json", problem())
                        .build(),
                ));
            }
            for (status, response) in answers {
                op.responses
                    .responses
                    .entry(status.to_string())
                    .or_insert(response.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::MerchantId;

    fn caller(role: Role, merchant: Option<&str>) -> Caller {
        Caller {
            key_id: "key_1".into(),
            principal: "key_1".into(),
            name: "t".into(),
            role,
            merchant_id: merchant.map(|m| MerchantId::parse(m).unwrap()),
        }
    }

    #[test]
    fn a_merchant_key_reaches_only_its_own_merchant() {
        let m = caller(Role::Merchant, Some("m-1"));
        let rule = access_of("GET", "/v1/merchants/{merchant_id}/eligibility");
        assert!(permit(&m, rule, Some("m-1")).is_ok());
        assert!(permit(&m, rule, Some("m-2")).is_err());
        assert!(permit(&m, rule, None).is_err());
        assert!(permit(&caller(Role::Lender, None), rule, Some("m-1")).is_err());
        assert!(permit(&m, access_of("GET", "/v1/features"), None).is_ok());
    }

    #[test]
    fn only_bearer_keys_of_the_right_shape_are_read() {
        let key = format!("smk_{}", "ab".repeat(32));
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            h
        };
        assert_eq!(
            presented_key(&with(&format!("Bearer {key}"))).ok(),
            Some(key.as_str())
        );
        assert_eq!(
            presented_key(&with(&format!("bearer  {key} "))).ok(),
            Some(key.as_str())
        );
        for bad in [
            format!("Basic {key}"),
            key.clone(),
            "Bearer".to_string(),
            "Bearer smk_short".to_string(),
        ] {
            assert!(
                matches!(
                    presented_key(&with(&bad)),
                    Err(ApiError::Unauthorized(KeyProblem::Malformed))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            presented_key(&HeaderMap::new()),
            Err(ApiError::Unauthorized(KeyProblem::Missing))
        ));
    }

    #[test]
    fn every_route_in_the_spec_has_an_access_rule_and_every_rule_a_route() {
        use utoipa::OpenApi;
        let spec = super::super::ApiDoc::openapi();
        let mut in_spec = vec![];
        for (path, item) in &spec.paths.paths {
            if item.get.is_some() {
                in_spec.push(("GET", path.as_str()));
            }
            if item.post.is_some() {
                in_spec.push(("POST", path.as_str()));
            }
        }
        for (method, path) in &in_spec {
            assert!(
                ROUTES
                    .iter()
                    .any(|r| r.method == *method && r.path == *path),
                "{method} {path} has no access rule"
            );
        }
        for r in ROUTES {
            assert!(
                in_spec.contains(&(r.method, r.path)),
                "{} {} is not in the spec",
                r.method,
                r.path
            );
        }
    }
}
