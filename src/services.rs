//! The one place that names the services: which code builds the function of each cargo binary
//! the template names (`Metadata.BuildProperties.Binary`). Adding a function is its crate, its
//! resources in `template.yaml`, and one line here.

use local_runtime::functions::{Built, Registry};

/// Every function of the system.
pub fn registry() -> Registry {
    Registry::new()
        .register("order-api", |sdk, env| {
            Ok(Built::http(order_api::OrderApi::from_env(sdk, env)?))
        })
        .register("orders", |sdk, env| {
            Ok(Built::queue(orders::Orders::from_env(sdk, env)?))
        })
        .register("inventory", |sdk, env| {
            Ok(Built::queue(inventory::Inventory::from_env(sdk, env)?))
        })
        .register("payment", |sdk, env| {
            let payment = payment::Payment::from_env(sdk, env)?;
            Ok(Built::queue_with_handle(payment, |p| p.gateway().clone()))
        })
        .register("shipping", |sdk, env| {
            Ok(Built::queue(shipping::Shipping::from_env(sdk, env)?))
        })
        .register("notification", |sdk, env| {
            Ok(Built::queue(notification::Notification::from_env(
                sdk, env,
            )?))
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use local_runtime::template::Topology;

    /// A function in the template without a builder could not run locally; a builder without a
    /// function in the template would never be deployed.
    #[test]
    fn every_template_function_has_a_builder_and_every_builder_a_function() {
        let template = local_runtime::emulator::project_root().join("template.yaml");
        let topology = Topology::load(&template, &Default::default()).unwrap();
        let in_template: BTreeSet<&str> = topology
            .functions
            .iter()
            .map(|f| f.binary.as_str())
            .collect();
        let registered: BTreeSet<&str> = super::registry().binaries().collect();
        assert_eq!(in_template, registered);
    }

    /// The order API dispatches on API Gateway's route key: it serves exactly the routes the
    /// template gives it.
    #[test]
    fn the_order_api_serves_the_routes_the_template_gives_it() {
        let template = local_runtime::emulator::project_root().join("template.yaml");
        let topology = Topology::load(&template, &Default::default()).unwrap();
        let api = topology
            .functions
            .iter()
            .find(|f| f.binary == "order-api")
            .unwrap();
        let routes: BTreeSet<String> = api.http_routes.iter().map(|r| r.key()).collect();
        let served: BTreeSet<String> = order_api::ROUTES.iter().map(|r| r.to_string()).collect();
        assert_eq!(routes, served);
    }
}
