//! The customers: signed up and signed in to the template's Cognito user pool (created by
//! [`crate::provision`]) for the ID tokens the API's JWT authorizer accepts. The demo, the tests and `cargo run -- token` get their tokens
//! here, from the real Cognito API.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType, MessageActionType};
use aws_sdk_cognitoidentityprovider::Client;
use tokio::sync::Mutex;

use crate::provision::Deployment;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The template's user pool and its app client on a deployment: signs customers up and in.
pub struct CustomerPool {
    cognito: Client,
    pool_id: String,
    client_id: String,
    /// Passwords of the customers this value signed up, and their tokens.
    known: Mutex<HashMap<String, (String, Option<String>)>>,
}

impl CustomerPool {
    /// The deployment's user pool and app client, if its template creates them (an external
    /// issuer's customers are signed in elsewhere).
    pub fn of(sdk: &SdkConfig, deployment: &Deployment) -> Option<Self> {
        let client = deployment.topology.user_pool_clients.first()?;
        let pool_id = deployment.physical(&client.user_pool)?.reference.clone();
        let client_id = deployment.physical(&client.logical_id)?.reference.clone();
        Some(Self {
            cognito: Client::new(sdk),
            pool_id,
            client_id,
            known: Mutex::new(HashMap::new()),
        })
    }

    /// The app client id: the audience of the tokens.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Creates the customer `email` with `password`, confirmed and without an invitation
    /// e-mail (an administrator's sign-up). `false` when the customer exists already.
    pub async fn sign_up(&self, email: &str, password: &str) -> Result<bool, Error> {
        let created = self
            .cognito
            .admin_create_user()
            .user_pool_id(&self.pool_id)
            .username(email)
            .user_attributes(
                AttributeType::builder()
                    .name("email")
                    .value(email)
                    .build()?,
            )
            .user_attributes(
                AttributeType::builder()
                    .name("email_verified")
                    .value("true")
                    .build()?,
            )
            .message_action(MessageActionType::Suppress)
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_username_exists_exception()) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(Box::new(e.into_service_error())),
        }
        self.set_password(email, password).await?;
        Ok(true)
    }

    /// Gives the customer `email` a new permanent password (an administrator's reset).
    pub async fn set_password(&self, email: &str, password: &str) -> Result<(), Error> {
        self.cognito
            .admin_set_user_password()
            .user_pool_id(&self.pool_id)
            .username(email)
            .password(password)
            .permanent(true)
            .send()
            .await
            .map_err(|e| Box::new(e.into_service_error()))?;
        Ok(())
    }

    /// Signs the customer in with their password (the admin flow); their ID token, which carries
    /// their subject and e-mail.
    pub async fn sign_in(&self, email: &str, password: &str) -> Result<String, Error> {
        let answer = self
            .cognito
            .admin_initiate_auth()
            .user_pool_id(&self.pool_id)
            .client_id(&self.client_id)
            .auth_flow(AuthFlowType::AdminUserPasswordAuth)
            .auth_parameters("USERNAME", email)
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .map_err(|e| Box::new(e.into_service_error()))?;
        answer
            .authentication_result()
            .and_then(|result| result.id_token())
            .map(str::to_owned)
            .ok_or_else(|| format!("signing {email} in gave no ID token").into())
    }

    /// The customer's subject (`sub`): their id in the tokens.
    pub async fn subject(&self, email: &str) -> Result<String, Error> {
        let user = self
            .cognito
            .admin_get_user()
            .user_pool_id(&self.pool_id)
            .username(email)
            .send()
            .await
            .map_err(|e| Box::new(e.into_service_error()))?;
        user.user_attributes()
            .iter()
            .find(|a| a.name() == "sub")
            .and_then(|a| a.value())
            .map(str::to_owned)
            .ok_or_else(|| format!("{email} has no sub").into())
    }

    /// An ID token for `email`: signed up with a new random password the first time this value
    /// sees them (a customer signed up by someone else, `cargo run -- token`, gets a new one:
    /// this is for the emulator's test customers, never a stack's), signed in once, and the
    /// token reused (tokens live an hour).
    pub async fn token(&self, email: &str) -> Result<String, Error> {
        let mut known = self.known.lock().await;
        if let Some((_, Some(token))) = known.get(email) {
            return Ok(token.clone());
        }
        let password = match known.get(email) {
            Some((password, _)) => password.clone(),
            None => {
                let password = new_password();
                if !self.sign_up(email, &password).await? {
                    self.set_password(email, &password).await?;
                }
                password
            }
        };
        let token = self.sign_in(email, &password).await?;
        known.insert(email.to_owned(), (password, Some(token.clone())));
        Ok(token)
    }
}

/// A password the template's policy accepts: 12+ characters with upper case, lower case and
/// digits, from 128 random bits.
pub fn new_password() -> String {
    format!("Pw-{:032x}-A9z", rand::random::<u128>())
}
