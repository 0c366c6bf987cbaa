//! The template's Cognito user pools and app clients: created on the emulator, or found on a
//! running system, by name.

use aws_config::SdkConfig;
use aws_sdk_cognitoidentityprovider::types::{ExplicitAuthFlowsType, UsernameAttributeType};
use aws_sdk_cognitoidentityprovider::Client;

use super::{aws_error, ProvisionError};
use crate::template::{Physical, Resolver, Topology};

/// Creates the template's user pools and app clients, named `prefix` + logical id.
pub(crate) async fn create(
    topology: &Topology,
    sdk: &SdkConfig,
    prefix: &str,
    resolver: &mut Resolver,
) -> Result<(), ProvisionError> {
    let cognito = Client::new(sdk);
    for pool in &topology.user_pools {
        let name = format!("{prefix}{}", pool.logical_id);
        let created = cognito
            .create_user_pool()
            .pool_name(&name)
            .set_username_attributes(Some(
                pool.username_attributes
                    .iter()
                    .map(|a| UsernameAttributeType::from(a.as_str()))
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| aws_error(&pool.logical_id, e))?;
        let pool_type = created.user_pool();
        resolver.resources.insert(
            pool.logical_id.clone(),
            Physical {
                name,
                reference: pool_type
                    .and_then(|p| p.id())
                    .unwrap_or_default()
                    .to_owned(),
                arn: pool_type
                    .and_then(|p| p.arn())
                    .unwrap_or_default()
                    .to_owned(),
            },
        );
    }
    for client in &topology.user_pool_clients {
        let name = format!("{prefix}{}", client.logical_id);
        let pool_id = resolver.reference(&client.user_pool)?;
        let created = cognito
            .create_user_pool_client()
            .user_pool_id(pool_id)
            .client_name(&name)
            .generate_secret(false)
            .set_explicit_auth_flows(Some(
                client
                    .explicit_auth_flows
                    .iter()
                    .map(|f| ExplicitAuthFlowsType::from(f.as_str()))
                    .collect(),
            ))
            .send()
            .await
            .map_err(|e| aws_error(&client.logical_id, e))?;
        let client_id = created
            .user_pool_client()
            .and_then(|c| c.client_id())
            .unwrap_or_default();
        resolver.resources.insert(
            client.logical_id.clone(),
            Physical {
                name,
                reference: client_id.to_owned(),
                arn: String::new(),
            },
        );
    }
    Ok(())
}

/// Finds the user pools and app clients an earlier [`create`] (or a stack with the same
/// `NamePrefix`) made, by name.
pub(crate) async fn locate(
    topology: &Topology,
    sdk: &SdkConfig,
    prefix: &str,
    resolver: &mut Resolver,
) -> Result<(), ProvisionError> {
    if topology.user_pools.is_empty() {
        return Ok(());
    }
    let cognito = Client::new(sdk);
    let pools = cognito
        .list_user_pools()
        .max_results(60)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| aws_error("user pools", e))?;
    for pool in &topology.user_pools {
        let name = format!("{prefix}{}", pool.logical_id);
        let Some(id) = pools
            .iter()
            .find(|p| p.name() == Some(name.as_str()))
            .and_then(|p| p.id())
        else {
            continue;
        };
        resolver.resources.insert(
            pool.logical_id.clone(),
            Physical {
                name,
                reference: id.to_owned(),
                arn: String::new(),
            },
        );
    }
    for client in &topology.user_pool_clients {
        let Some(pool_id) = resolver
            .resources
            .get(&client.user_pool)
            .map(|p| p.reference.clone())
        else {
            continue;
        };
        let name = format!("{prefix}{}", client.logical_id);
        let clients = cognito
            .list_user_pool_clients()
            .user_pool_id(&pool_id)
            .max_results(60)
            .send()
            .await
            .map_err(|e| aws_error(&client.logical_id, e))?;
        if let Some(id) = clients
            .user_pool_clients()
            .iter()
            .find(|c| c.client_name() == Some(name.as_str()))
            .and_then(|c| c.client_id())
        {
            resolver.resources.insert(
                client.logical_id.clone(),
                Physical {
                    name,
                    reference: id.to_owned(),
                    arn: String::new(),
                },
            );
        }
    }
    Ok(())
}
