//! Who the customer is. Behind the JWT authorizer (`CUSTOMER_IDENTITY=token`), the token's
//! subject and e-mail, as API Gateway hands the verified claims on; a body that names a customer
//! is refused, and a customer sees and cancels only their own orders. Behind IAM or no
//! authorization (`CUSTOMER_IDENTITY=body`) the caller is a trusted service (or, with NONE,
//! anyone) and names the customer in the body.

use std::str::FromStr;

use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};

/// Where the customer's identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// The JWT's `sub` and `email` claims.
    Token,
    /// `customerId` and `customerEmail` in the order body.
    Body,
}

impl FromStr for IdentitySource {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "token" => Ok(Self::Token),
            "body" => Ok(Self::Body),
            other => Err(format!("{other:?} is neither token nor body")),
        }
    }
}

/// A customer the token vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: String,
    pub email: String,
}

/// The verified claim `name` of the request's JWT (payload format 2.0:
/// `requestContext.authorizer.jwt.claims`).
fn claim<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV2(context) => context
            .authorizer
            .as_ref()?
            .jwt
            .as_ref()?
            .claims
            .get(name)
            .map(String::as_str),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// The token's subject: who is asking.
pub fn subject(request: &Request) -> Option<&str> {
    claim(request, "sub").filter(|sub| !sub.is_empty())
}

/// The customer of an order request: the token's subject and e-mail. `Err` names what the
/// token lacks (an access token carries no e-mail: the ID token is the one to send).
pub fn customer(request: &Request) -> Result<Customer, &'static str> {
    let id = subject(request).ok_or("the request carries no verified token subject")?;
    let email = claim(request, "email")
        .filter(|email| !email.is_empty())
        .ok_or("the token carries no e-mail claim; send the ID token")?;
    Ok(Customer {
        id: id.to_owned(),
        email: email.to_owned(),
    })
}
